package neuron

import (
	"context"
	"errors"

	"github.com/cybertensor/cybertensor/knowledge"
	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/subnet"
)

// storageProve serves "storage.prove" from the library lib returns (nil
// until it is open): the proof of holding the challenged bytes, from the
// local store only — a miner that does not hold the object answers
// NOT_FOUND rather than fetch it (from the validator that asks, likely).
func storageProve(lib func() *knowledge.Library) protocol.Handler {
	return protocol.HandlerFunc(func(ctx context.Context, r *protocol.Request, w protocol.ResponseWriter) error {
		ch, err := subnet.DecodeStorageChallenge(r.Body)
		if err != nil {
			return protocol.Errorf(protocol.StatusBadRequest, "%v", err)
		}
		l := lib()
		if l == nil {
			return protocol.Errorf(protocol.StatusNotFound, "no knowledge library open yet")
		}
		c, err := knowledge.ParseCID(ch.CID)
		if err != nil {
			return protocol.Errorf(protocol.StatusBadRequest, "%v", err)
		}
		data, err := l.ReadRange(ctx, c, ch.Offset, ch.Length)
		switch {
		case errors.Is(err, knowledge.ErrNotFound):
			return protocol.Errorf(protocol.StatusNotFound, "%v", err)
		case errors.Is(err, knowledge.ErrOutOfRange):
			return protocol.Errorf(protocol.StatusBadRequest, "%v", err)
		case err != nil:
			return err
		}
		return w.Write(ch.Prove(data).Encode())
	})
}

// computeRun serves "compute.run": it does the job until it is done or
// the request's deadline passes.
func computeRun() protocol.Handler {
	return protocol.HandlerFunc(func(ctx context.Context, r *protocol.Request, w protocol.ResponseWriter) error {
		job, err := subnet.DecodeComputeJob(r.Body)
		if err != nil {
			return protocol.Errorf(protocol.StatusBadRequest, "%v", err)
		}
		res, err := job.Solve(ctx)
		if err != nil {
			return err
		}
		return w.Write(res.Encode())
	})
}

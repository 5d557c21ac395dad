package neuron

import (
	"context"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"

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
		data, err := readRange(ctx, l, c, ch.Offset, ch.Length)
		switch {
		case errors.Is(err, knowledge.ErrNotFound):
			return protocol.Errorf(protocol.StatusNotFound, "%v", err)
		case errors.Is(err, errOutOfRange):
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

// errOutOfRange is a range past the end of a body.
var errOutOfRange = errors.New("neuron: range past the end of the body")

// readRange reads length bytes at offset of c's body from lib's local
// store; c not held completely is knowledge.ErrNotFound (nothing is
// fetched).
func readRange(ctx context.Context, lib *knowledge.Library, c cid.Cid, offset, length uint64) ([]byte, error) {
	if !lib.Has(c) {
		return nil, fmt.Errorf("%w: %s is not held here", knowledge.ErrNotFound, c)
	}
	w := &rangeWriter{skip: offset, buf: make([]byte, 0, length)}
	if _, err := lib.Get(ctx, c, w); err != nil && !errors.Is(err, errRangeRead) {
		return nil, err
	}
	if uint64(len(w.buf)) < length {
		return nil, fmt.Errorf("%w: %d bytes at %d of %s", errOutOfRange, length, offset, c)
	}
	return w.buf, nil
}

// errRangeRead stops reading a body once the range is read.
var errRangeRead = errors.New("range read")

// rangeWriter keeps cap(buf) bytes after the first skip written to it.
type rangeWriter struct {
	skip uint64
	buf  []byte
}

func (w *rangeWriter) Write(p []byte) (int, error) {
	n := len(p)
	if w.skip >= uint64(len(p)) {
		w.skip -= uint64(len(p))
		return n, nil
	}
	p = p[w.skip:]
	w.skip = 0
	take := min(len(p), cap(w.buf)-len(w.buf))
	w.buf = append(w.buf, p[:take]...)
	if len(w.buf) == cap(w.buf) {
		return n, errRangeRead
	}
	return n, nil
}

package protocol

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/cybertensor/cybertensor/protocol/pb"
)

// StreamPending passes every chunk in order, and reports nothing pending
// for a chunk after which the server sent nothing yet: here the server
// writes each chunk only once the client has had the one before.
func TestStreamPending(t *testing.T) {
	nt := newNet(t, 2)
	ack := make(chan struct{})
	nt.server(0, map[string]Handler{"text.steps": HandlerFunc(func(ctx context.Context, _ *Request, w ResponseWriter) error {
		for i := range 5 {
			if err := w.Write([]byte(fmt.Sprintf("c%d ", i))); err != nil {
				return err
			}
			select {
			case <-ack:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})}, DefaultServerConfig())
	c := nt.client(1)
	defer c.Close()
	var got strings.Builder
	res := c.StreamPending(context.Background(), nt.hosts[0].ID(), &pb.Request{Netuid: 1, Synapse: "text.steps", TimeoutMs: 10_000},
		func(b []byte, pending bool) error {
			if pending {
				t.Errorf("chunk %q: pending, though the server waits for this one to arrive", b)
			}
			got.Write(b)
			ack <- struct{}{}
			return nil
		})
	if res.Status != StatusOK || got.String() != "c0 c1 c2 c3 c4 " {
		t.Fatalf("result %v %v, chunks %q", res.Status, res.Err, got.String())
	}
}

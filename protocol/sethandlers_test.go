package protocol

import (
	"context"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/protocol/pb"
)

// SetHandlers replaces the synapses a server serves: a synapse dropped is
// NOT_FOUND from then on, a new one is served, and the caller's map is
// copied (changing it later changes nothing).
func TestSetHandlers(t *testing.T) {
	reply := func(s string) Handler {
		return HandlerFunc(func(_ context.Context, _ *Request, w ResponseWriter) error { return w.Write([]byte(s)) })
	}
	first := map[string]Handler{"old.v1": reply("old")}
	srv, ch, sid := servePair(t, "mocknet", first, DefaultServerConfig())
	client, err := NewClient(ch, DefaultClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ask := func(synapse string) Result {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return client.Stream(ctx, sid, &pb.Request{Netuid: 1, Synapse: synapse, Body: []byte("{}"), TimeoutMs: 5000}, nil)
	}
	if r := ask("old.v1"); r.Status != StatusOK || string(r.Body) != "old" {
		t.Fatalf("before: %v %q %q", r.Status, r.Message, r.Body)
	}
	next := map[string]Handler{"new.v1": reply("new")}
	srv.SetHandlers(next)
	next["new.v1"] = reply("changed")
	if r := ask("old.v1"); r.Status != StatusNotFound {
		t.Fatalf("a dropped synapse: %v %q", r.Status, r.Message)
	}
	if r := ask("new.v1"); r.Status != StatusOK || string(r.Body) != "new" {
		t.Fatalf("the new synapse: %v %q %q", r.Status, r.Message, r.Body)
	}
}

package protocol

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

func TestBudget(t *testing.T) {
	const perPeer, total = 4, 10 // unregistered callers: 5
	a, b, c := peer.ID("a"), peer.ID("b"), peer.ID("c")
	type step struct {
		id         peer.ID
		n          int
		registered bool
		ok         bool
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"per peer", []step{{a, 3, true, true}, {a, 2, true, false}, {a, 1, true, true}, {b, 4, true, true}}},
		{"in total", []step{{a, 4, true, true}, {b, 4, true, true}, {c, 3, true, false}, {c, 2, true, true}}},
		{"unregistered share", []step{{a, 4, false, true}, {b, 2, false, false}, {b, 1, false, true}, {c, 4, true, true}, {b, 1, true, true}, {c, 1, false, false}}},
		{"registered keep the rest", []step{{a, 4, false, true}, {b, 1, false, true}, {c, 4, true, true}, {peer.ID("d"), 1, true, true}, {peer.ID("e"), 1, true, false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bu := newBudget(perPeer, total)
			for i, s := range tc.steps {
				if _, ok := bu.take(s.id, s.n, s.registered); ok != s.ok {
					t.Fatalf("step %d %+v: took %v", i, s, ok)
				}
			}
		})
	}
	// Giving back lets a waiter in; a waiter gives up at its deadline.
	bu := newBudget(perPeer, total)
	h, _ := bu.take(a, 4, true)
	got := make(chan error, 1)
	go func() {
		h2, err := bu.wait(context.Background(), a, 2, true)
		bu.give(h2)
		got <- err
	}()
	bu.give(h)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	h, _ = bu.take(a, 4, true)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := bu.wait(ctx, a, 1, true); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait past the deadline: %v", err)
	}
	bu.give(h)
	if bu.held != 0 || bu.unreg != 0 || len(bu.peers) != 0 {
		t.Fatalf("left %d held, %d unregistered, %v", bu.held, bu.unreg, bu.peers)
	}
}

package backend

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// A miner's handlers call the model server concurrently: their
// connections are kept for the next calls (http.DefaultTransport keeps 2
// per host and would open most of them anew each time).
func TestConcurrentChatsKeepTheirConnections(t *testing.T) {
	var conns atomic.Int64
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		for _, tok := range []string{"a ", "b ", "c"} {
			fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{\"content\":%q}}]}\n\n", tok)
			w.(http.Flusher).Flush()
		}
		io.WriteString(w, "data: [DONE]\n\n")
	}))
	up.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	up.Start()
	defer up.Close()
	o := newOpenAI(t, OpenAIConfig{BaseURL: up.URL})
	const concurrent, rounds = 16, 5
	for range rounds {
		var wg sync.WaitGroup
		for range concurrent {
			wg.Go(func() {
				chunks, _, err := chat(o, context.Background(), user("x"))
				if err != nil || strings.Join(chunks, "") != "a b c" {
					t.Errorf("chunks %q, err %v", chunks, err)
				}
			})
		}
		wg.Wait()
	}
	// The first round opens up to 16; later rounds reuse them (a few
	// more may be dialled while a call returns its connection).
	if n := conns.Load(); n > concurrent+4 {
		t.Fatalf("%d rounds of %d concurrent calls opened %d connections", rounds, concurrent, n)
	}
}

package gateway

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/openai/openai-go/v3"

	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/subnet"
)

// memOrganic samples what want says and keeps what it is handed.
type memOrganic struct {
	mu     sync.Mutex
	want   bool
	asked  []string
	got    []OrganicAnswer
	handed chan struct{}
}

func (o *memOrganic) WantOrganic(netuid uint16, synapse string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.asked = append(o.asked, synapse)
	return o.want && netuid == 1
}

func (o *memOrganic) Organic(a OrganicAnswer) {
	o.mu.Lock()
	o.got = append(o.got, a)
	o.mu.Unlock()
	o.handed <- struct{}{}
}

func (o *memOrganic) answers() []OrganicAnswer {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]OrganicAnswer(nil), o.got...)
}

// A sampled request's answers reach the organic scorer whole — chat,
// streamed chat and embeddings — with the request the miner got and the
// miner that gave them; a miner failing before its answer is handed over
// as its failure, and the answer of the miner tried next as an answer. An
// unsampled request hands nothing over.
func TestOrganicSample(t *testing.T) {
	org := &memOrganic{want: true, handed: make(chan struct{}, 16)}
	r := newRig(t, 2, DefaultTestConfig(), firstPick, func(s *Server) { s.deps.Organic = org })
	ctx := context.Background()
	m0 := r.miners[0].key.PublicKey().Address().String()
	if _, err := r.client.Chat.Completions.New(ctx, chatParams()); err != nil {
		t.Fatal(err)
	}
	<-org.handed
	st := r.client.Chat.Completions.NewStreaming(ctx, chatParams())
	for st.Next() {
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	<-org.handed
	if _, err := r.client.Embeddings.New(ctx, openai.EmbeddingNewParams{Model: "sn1/text.embed",
		Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"a", "bcd"}}}); err != nil {
		t.Fatal(err)
	}
	<-org.handed
	got := org.answers()
	for i, want := range []string{subnet.SynapseChat, subnet.SynapseChat, subnet.SynapseEmbed} {
		a := got[i]
		if a.Synapse != want || a.Netuid != 1 || a.Hotkey != m0 || a.UID != 0 || a.Status != protocol.StatusOK || a.Invalid != "" || a.Timeout <= 0 || a.Latency <= 0 {
			t.Fatalf("answer %d: %+v", i, a)
		}
		if want == subnet.SynapseChat {
			if string(a.Answer) != answer {
				t.Fatalf("answer %d: %q, want the whole answer %q", i, a.Answer, answer)
			}
			if _, err := subnet.DecodeChatRequest(a.Request); err != nil || !strings.Contains(string(a.Request), "say the pangram") {
				t.Fatalf("answer %d's request %q: %v", i, a.Request, err)
			}
		} else if _, err := subnet.DecodeEmbedAnswer(a.Answer, subnet.EmbedRequest{Input: []string{"a", "bcd"}}); err != nil {
			t.Fatalf("embeddings handed over: %v", err)
		}
	}

	// Not sampled: nothing handed over.
	org.mu.Lock()
	org.want = false
	n := len(org.got)
	org.mu.Unlock()
	st = r.client.Chat.Completions.NewStreaming(ctx, chatParams())
	for st.Next() {
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	r.rec.waitRecords(t, 4)
	if len(org.answers()) != n {
		t.Fatalf("an unsampled request was handed over")
	}
	org.mu.Lock()
	org.want = true
	org.mu.Unlock()

	// Miner 0 fails before its first byte: its failure, then miner 1's
	// answer.
	r.miners[0].setMode(modeFailBefore)
	if _, err := r.client.Chat.Completions.New(ctx, chatParams()); err != nil {
		t.Fatal(err)
	}
	<-org.handed
	<-org.handed
	got = org.answers()[3:]
	m1 := r.miners[1].key.PublicKey().Address().String()
	if got[0].Hotkey != m0 || got[0].Status != protocol.StatusInternal || got[0].Answer != nil ||
		got[1].Hotkey != m1 || got[1].Status != protocol.StatusOK || string(got[1].Answer) != answer {
		t.Fatalf("handed over %+v", got)
	}

	// An answer the gateway refuses is handed over as invalid.
	r.miners[1].setHandler(func(_ context.Context, _ *protocol.Request, w protocol.ResponseWriter) error {
		return w.Write([]byte{0xff, 0xfe})
	})
	r.miners[0].setHandler(r.miners[1].handler)
	r.miners[0].setMode(modeOK)
	if _, err := r.client.Chat.Completions.New(ctx, chatParams()); err == nil {
		t.Fatal("an answer that is not UTF-8 was served")
	}
	<-org.handed
	if a := org.answers()[5]; a.Status != protocol.StatusOK || a.Invalid == "" || a.Answer != nil {
		t.Fatalf("a refused answer handed over as %+v", a)
	}
}

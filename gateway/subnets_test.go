package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
)

// TestSubnetsKeptApart runs one gateway over two subnets, two miners each:
// /v1/models lists both subnets' models, a request naming sn<N>/… reaches
// only subnet N's miners and is recorded under subnet N and its model,
// /healthz counts each subnet's miners, a subnet whose miners all fail
// answers 503 naming it while the other serves on, and a subnet not served
// is an unknown model.
func TestSubnetsKeptApart(t *testing.T) {
	cfg := DefaultTestConfig()
	cfg.Subnets = []uint16{1, 2}
	r := newRig(t, 4, cfg, func(s *Server) {
		m := s.deps.Metagraph.(*staticMetagraph)
		m.mu.Lock()
		all := m.miners[1]
		m.miners[1], m.miners[2] = all[:2], all[2:]
		m.mu.Unlock()
	})
	of := map[string]uint16{} // miner peer → its subnet
	for i, f := range r.miners {
		of[f.h.ID().String()] = uint16(1 + i/2)
	}
	bg := context.Background()

	page, err := r.client.Models.List(bg)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range page.Data {
		ids = append(ids, m.ID)
	}
	want := []string{"sn1/text.chat", "sn1/text.embed", "sn2/text.chat", "sn2/text.embed"}
	if !slices.Equal(ids, want) || !slices.Equal(cfg.Models(), want) {
		t.Fatalf("models %v, Config.Models %v, want %v", ids, cfg.Models(), want)
	}

	const each = 6
	for range each {
		for _, n := range []int{1, 2} {
			p := chatParams()
			p.Model = fmt.Sprintf("sn%d/text.chat", n)
			if _, err := r.client.Chat.Completions.New(bg, p); err != nil {
				t.Fatalf("sn%d: %v", n, err)
			}
			_, err := r.client.Embeddings.New(bg, openai.EmbeddingNewParams{Model: fmt.Sprintf("sn%d/text.embed", n),
				Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"a"}}})
			if err != nil {
				t.Fatalf("sn%d embed: %v", n, err)
			}
		}
	}
	if a, b := r.miners[0].callCount()+r.miners[1].callCount(), r.miners[2].callCount()+r.miners[3].callCount(); a != each || b != each {
		t.Fatalf("subnet 1's miners answered %d chats, subnet 2's %d; want %d each", a, b, each)
	}
	rows := r.rec.waitRecords(t, 4*each)
	perSubnet := map[uint16]int{}
	for _, u := range rows {
		if of[u.MinerPeer] != u.Netuid || !strings.HasPrefix(u.Model, fmt.Sprintf("sn%d/", u.Netuid)) || u.HTTPStatus != 200 {
			t.Fatalf("row of subnet %d, model %s, answered by a miner of subnet %d: %+v", u.Netuid, u.Model, of[u.MinerPeer], u)
		}
		perSubnet[u.Netuid]++
	}
	if perSubnet[1] != 2*each || perSubnet[2] != 2*each {
		t.Fatalf("rows per subnet %v", perSubnet)
	}

	resp, err := http.Get(r.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var health struct {
		Miners map[string]int `json:"miners"`
	}
	err = json.NewDecoder(resp.Body).Decode(&health)
	resp.Body.Close()
	if err != nil || health.Miners["1"] != 2 || health.Miners["2"] != 2 {
		t.Fatalf("healthz %+v %v", health, err)
	}

	// Subnet 2's miners fail: its requests get 503 naming it, and none
	// reaches subnet 1's miners; subnet 1 serves on.
	r.miners[2].setMode(modeFailBefore)
	r.miners[3].setMode(modeFailBefore)
	before := r.miners[0].callCount() + r.miners[1].callCount()
	p := chatParams()
	p.Model = "sn2/text.chat"
	_, err = r.client.Chat.Completions.New(bg, p)
	if e := apiErr(t, err, http.StatusServiceUnavailable, "no_miner_available"); !strings.Contains(e.Message, "subnet 2") {
		t.Fatalf("sn2 with its miners failing: %s", e.Message)
	}
	if after := r.miners[0].callCount() + r.miners[1].callCount(); after != before {
		t.Fatalf("a subnet 2 request reached subnet 1's miners (%d calls, were %d)", after, before)
	}
	if _, err := r.client.Chat.Completions.New(bg, chatParams()); err != nil {
		t.Fatalf("sn1 while subnet 2 fails: %v", err)
	}
	p.Model = "sn3/text.chat"
	_, err = r.client.Chat.Completions.New(bg, p)
	apiErr(t, err, http.StatusNotFound, "model_not_found")
	http.DefaultClient.CloseIdleConnections()
}

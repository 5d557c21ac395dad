package gateway

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/wallet"
)

// The API request decoders take untrusted bytes: they must not panic,
// and what they accept must be a request the miners' decoders accept.

func FuzzDecodeChatCompletion(f *testing.F) {
	f.Add([]byte(`{"model":"sn1/text.chat","messages":[{"role":"user","content":"hi"}],"max_tokens":5,"stop":"x","stream":true}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"developer","content":[{"type":"text","text":"a"}]}],"temperature":1,"seed":3}`))
	f.Add([]byte(`{"messages":[{"role":"user","content":null}],"stop":["a","b"],"n":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, e := decodeChatCompletion(b)
		if e != nil {
			if e.status != 400 || e.message == "" {
				t.Fatalf("error %v", e)
			}
			return
		}
		if err := p.req.Check(); err != nil {
			t.Fatalf("accepted a request the miners refuse: %v", err)
		}
	})
}

func FuzzDecodeCompletion(f *testing.F) {
	f.Add([]byte(`{"model":"sn1/text.chat","prompt":"hi","max_tokens":5}`))
	f.Add([]byte(`{"model":"sn1/text.chat","prompt":["hi"],"stream":true,"stream_options":{"include_usage":true}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, e := decodeCompletion(b)
		if e != nil {
			if e.status != 400 {
				t.Fatalf("error %v", e)
			}
			return
		}
		if err := p.req.Check(); err != nil || len(p.req.Messages) != 1 {
			t.Fatalf("accepted a request the miners refuse: %v", err)
		}
	})
}

func FuzzDecodeEmbedding(f *testing.F) {
	f.Add([]byte(`{"model":"sn1/text.embed","input":"hi","dimensions":8}`))
	f.Add([]byte(`{"model":"sn1/text.embed","input":["a","b"],"encoding_format":"base64"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, e := decodeEmbedding(b)
		if e != nil {
			if e.status != 400 {
				t.Fatalf("error %v", e)
			}
			return
		}
		if err := p.req.Check(); err != nil {
			t.Fatalf("accepted a request the miners refuse: %v", err)
		}
	})
}

// FuzzUTF8Joiner: a miner's answer cut anywhere passes on unchanged,
// and an answer that is not UTF-8 is refused.
func FuzzUTF8Joiner(f *testing.F) {
	f.Add([]byte("héllo wörld ✓ 𝄞"), uint8(1), uint8(2))
	f.Add([]byte{0xe2, 0x9c}, uint8(1), uint8(0))
	f.Fuzz(func(t *testing.T, b []byte, a, c uint8) {
		cuts := []int{int(a) % (len(b) + 1), int(c) % (len(b) + 1)}
		if cuts[0] > cuts[1] {
			cuts[0], cuts[1] = cuts[1], cuts[0]
		}
		var j utf8Joiner
		var out strings.Builder
		var err error
		for _, part := range [][]byte{b[:cuts[0]], b[cuts[0]:cuts[1]], b[cuts[1]:]} {
			var s string
			if s, err = j.push(part); err != nil {
				break
			}
			out.WriteString(s)
		}
		if err == nil {
			err = j.end()
		}
		if utf8.Valid(b) != (err == nil) || (err == nil && out.String() != string(b)) {
			t.Fatalf("%q cut at %v: %q, %v", b, cuts, out.String(), err)
		}
	})
}

// mgReader serves one metagraph.
type mgReader struct{ m *chain.Metagraph }

func (r mgReader) Metagraph(context.Context, uint16, bool) (*chain.Metagraph, error) { return r.m, nil }

func TestChainMetagraph(t *testing.T) {
	k0, k1, k2 := testKey(0), testKey(1), testKey(2)
	addr := func(k *wallet.PrivateKey) chain.Address { return chain.Address(k.PublicKey().Address()) }
	mg := &chain.Metagraph{
		Hotkeys:   []chain.Address{addr(k0), addr(k1), addr(k2)},
		Incentive: []uint16{65535, 0, 100},
		Trust:     []uint16{32768, 0, 65535},
		Axons: []*chain.Axon{
			{PeerID: k0.PublicKey().PeerID().String(), Multiaddrs: []string{"/ip4/127.0.0.1/tcp/1", "garbage"}},
			nil, // no axon: not a miner to ask
			{PeerID: k2.PublicKey().PeerID().String(), Multiaddrs: []string{"not an address"}}, // nowhere to dial
		},
	}
	ms, err := ChainMetagraph{Chain: mgReader{mg}}.Miners(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].UID != 0 || ms[0].Peer != k0.PublicKey().PeerID() || len(ms[0].Addrs) != 1 ||
		ms[0].Incentive != 1 || ms[0].Trust != 32768.0/65535 || ms[0].Hotkey != mg.Hotkeys[0].String() {
		t.Fatalf("miners %+v", ms)
	}
	// The gateway's own hotkey is left out.
	ms, _ = ChainMetagraph{Chain: mgReader{mg}, Self: k0.PublicKey().PeerID()}.Miners(context.Background(), 1)
	if len(ms) != 0 {
		t.Fatalf("own axon listed: %+v", ms)
	}
}

// FuzzAppendJSONString: the streaming fast path writes each text as a
// JSON string that decodes to the text.
func FuzzAppendJSONString(f *testing.F) {
	f.Add("plain")
	f.Add("quote \" backslash \\ newline \n tab \t nul \x00 bell \x07 é ✓ \u2028")
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		var back string
		b := appendJSONString([]byte("x"), s)
		if err := json.Unmarshal(b[1:], &back); err != nil || back != s || b[0] != 'x' {
			t.Fatalf("%q encoded %s: %q, %v", s, b[1:], back, err)
		}
	})
}

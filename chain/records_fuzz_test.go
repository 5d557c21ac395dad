package chain

import (
	"testing"
)

// recordPrefixes are the state record kinds a store holds, with their key
// lengths: the fuzzer picks one so its bytes reach each decoder.
var recordPrefixes = []struct {
	prefix string
	keyLen int
}{{"a/", 22}, {"h/", 22}, {"s/", 4}, {"n/", 6}, {"i/", 22}, {"j/", 4}, {"c/", 24}, {"g", 1}}

// FuzzLoadRecord feeds arbitrary bytes, under every kind of state key, to
// the decoder a restart runs on the store's records (loadRecord): it never
// panics, and an accepted account, hotkey (with its take and payout tail),
// identity or child-key record encodes again to a record that loads.
func FuzzLoadRecord(f *testing.F) {
	h := childScenario(f)
	for _, r := range h.s.allRecords() {
		for i, p := range recordPrefixes {
			if len(r.key) == p.keyLen && r.key[:len(p.prefix)] == p.prefix {
				f.Add(uint8(i), []byte(r.key[len(p.prefix):]), r.value)
			}
		}
	}
	f.Add(uint8(4), make([]byte, 20), (&Identity{Name: "acme", URL: "https://acme.example", Description: "we\nrun"}).encode())
	f.Fuzz(func(t *testing.T, kind uint8, tail, value []byte) {
		p := recordPrefixes[int(kind)%len(recordPrefixes)]
		key := p.prefix + string(tail)
		if len(key) != p.keyLen {
			return
		}
		if p.prefix == "g" {
			key = keyGlobals()
		}
		s := newEmptyState(nil)
		if err := s.loadRecord(key, value, map[uint16][]*Neuron{}); err != nil {
			return
		}
		switch p.prefix {
		case "a/", "h/", "i/", "j/", "c/":
		default:
			return // subnets and neurons load only together
		}
		for _, r := range s.allRecords() {
			if r.key == keyGlobals() {
				continue
			}
			again := newEmptyState(nil)
			if err := again.loadRecord(r.key, r.value, map[uint16][]*Neuron{}); err != nil {
				t.Fatalf("record %x loaded, its encoding %x does not: %v", key, r.value, err)
			}
		}
	})
}

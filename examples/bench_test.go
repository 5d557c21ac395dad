package examples

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cybertensor/cybertensor/subnet"
)

// BenchmarkExampleValidateRequest validates a 4 KiB summarize.v1 request
// (the summarize example's schema) against two baselines in the same run:
// encoding/json decoding the same body into a map, and json.Valid alone.
// Issue #21's target is at most 20 µs for the schema check.
func BenchmarkExampleValidateRequest(b *testing.B) {
	text, err := os.ReadFile(filepath.Join("summarize", "spec.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	spec, err := subnet.Parse(text)
	if err != nil {
		b.Fatal(err)
	}
	syn := spec.Synapse("summarize.v1")
	const prefix, suffix = `{"text": "`, `"}`
	article := strings.Repeat("The harbor town of Elsby will run an electric ferry. ", 4096/50)
	body := []byte(prefix + article[:4096-len(prefix)-len(suffix)] + suffix)
	if len(body) != 4096 {
		b.Fatalf("%d bytes", len(body))
	}
	if err := syn.ValidateRequest(body); err != nil {
		b.Fatal(err)
	}
	b.Run("schema", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if err := syn.ValidateRequest(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline=json.Unmarshal", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			var v map[string]any
			if err := json.Unmarshal(body, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline=json.Valid", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if !json.Valid(body) {
				b.Fatal("invalid")
			}
		}
	})
}

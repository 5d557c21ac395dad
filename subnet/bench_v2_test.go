package subnet

import (
	"strings"
	"testing"
)

// BenchmarkValidateRequest4KiB validates a 4 KiB request against a custom
// synapse's schema (issue #21's target: at most 20 µs).
func BenchmarkValidateRequest4KiB(b *testing.B) {
	s, err := Parse([]byte(validV2))
	if err != nil {
		b.Fatal(err)
	}
	syn := s.Synapse("summarize.v1")
	const prefix, suffix = `{"text": "`, `", "style": "short"}`
	text := strings.Repeat("lorem ipsum ", 4096/12)[:4096-len(prefix)-len(suffix)]
	body := []byte(prefix + text + suffix)
	if len(body) != 4096 {
		b.Fatalf("%d bytes", len(body))
	}
	if err := syn.ValidateRequest(body); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := syn.ValidateRequest(body); err != nil {
			b.Fatal(err)
		}
	}
}

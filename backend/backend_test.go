package backend

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

const execChildEnv = "CYBERTENSOR_EXEC_BACKEND_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(execChildEnv); mode != "" {
		execChild(mode)
		return
	}
	goleak.VerifyTestMain(m)
}

var library = []Document{
	{ID: "yuma", Text: "Yuma consensus computes a stake-weighted median of validator weights.\n\nWeights above the consensus are clipped before ranks are computed."},
	{ID: "bonds", Text: "Bonds are an exponential moving average of the weights a validator sets, so early and honest validators earn dividends."},
	{ID: "chain", Text: "The chain runs under CometBFT with a deterministic application hash."},
}

func TestRetrievalAnswersFromTheLibrary(t *testing.T) {
	r := NewRetrieval(library...)
	cases := map[string]string{
		"What does Yuma consensus compute?":           "stake-weighted median",
		"which weights are clipped?":                  "clipped",
		"How do validators earn dividends with bonds": "exponential moving average",
		"what consensus engine runs the chain":        "CometBFT",
	}
	for q, want := range cases {
		var got strings.Builder
		if err := r.Generate(context.Background(), q, func(s string) error { got.WriteString(s); return nil }); err != nil {
			t.Fatalf("%q: %v", q, err)
		}
		if !strings.Contains(got.String(), want) {
			t.Errorf("%q: answered %q, want a passage with %q", q, got.String(), want)
		}
	}
	// Deterministic ranking.
	a, b := r.Search("consensus weights", 3), r.Search("consensus weights", 3)
	if fmt.Sprint(a) != fmt.Sprint(b) || len(a) == 0 {
		t.Fatal("search is not deterministic")
	}
	if err := r.Generate(context.Background(), "zebra giraffe", func(string) error { return nil }); !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("no match: %v", err)
	}
}

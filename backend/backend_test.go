package backend

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

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

// execChild is a JSON-lines backend: it upper-cases prompts, fails on
// "fail", hangs on "hang", and exits on "exit".
func execChild(mode string) {
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		var req ExecMessage
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			fmt.Println(`{"id": 0, "error": "bad line"}`)
			continue
		}
		var in struct{ Prompt string }
		json.Unmarshal(req.Body, &in)
		switch in.Prompt {
		case "fail":
			b, _ := json.Marshal(ExecMessage{ID: req.ID, Error: "cannot do that"})
			fmt.Println(string(b))
		case "hang":
			select {}
		case "exit":
			os.Exit(0)
		default:
			out, _ := json.Marshal(strings.ToUpper(in.Prompt))
			b, _ := json.Marshal(ExecMessage{ID: req.ID, Body: out})
			fmt.Println(string(b))
		}
	}
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

func TestExecBackend(t *testing.T) {
	start := func(t *testing.T) *Exec {
		t.Helper()
		os.Setenv(execChildEnv, "1")
		defer os.Unsetenv(execChildEnv)
		e, err := StartExec(os.Args[0], "-test.run=^$")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	e := start(t)
	ctx := context.Background()
	var got string
	if err := e.Generate(ctx, "hello", func(s string) error { got = s; return nil }); err != nil || got != "HELLO" {
		t.Fatalf("generate %q %v", got, err)
	}
	if err := e.Generate(ctx, "fail", func(string) error { return nil }); err == nil || !strings.Contains(err.Error(), "cannot do that") {
		t.Fatalf("error line: %v", err)
	}
	// Still in step after an error.
	if err := e.Generate(ctx, "again", func(s string) error { got = s; return nil }); err != nil || got != "AGAIN" {
		t.Fatalf("after error %q %v", got, err)
	}
	// A hanging child is killed at the deadline.
	tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := e.Generate(tctx, "hang", func(string) error { return nil }); err == nil {
		t.Fatal("hanging call returned no error")
	}
	if err := e.Generate(ctx, "x", func(string) error { return nil }); !errors.Is(err, ErrExecClosed) {
		t.Fatalf("after kill: %v", err)
	}
	// A child that exits is reported.
	e2 := start(t)
	if err := e2.Generate(ctx, "exit", func(string) error { return nil }); !errors.Is(err, ErrExecClosed) {
		t.Fatalf("exited child: %v", err)
	}
}

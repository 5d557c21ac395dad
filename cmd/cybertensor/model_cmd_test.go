package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cybertensor/cybertensor/knowledge"
)

// evalOut is "model eval --json" as tests read it.
type evalOut struct {
	BitsPerChar float64 `json:"bits_per_char"`
	NatsPerChar float64 `json:"nats_per_char"`
	Chars       int     `json:"chars"`
	Model       string  `json:"model"`
	Order       int     `json:"order"`
	WeightsHash string  `json:"weights_hash"`
}

// A miner's path: train on a file and on the same text published in the
// library (by CID), evaluate, inspect; the same text and order give the
// same weights under two cards.
func TestModelCommands(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	pw := writeFile(t, dir, "pw", "pw")
	c.ok("--home", home, "wallet", "new", "--wallet", "default", "--password-file", pw)
	corpus, err := os.ReadFile("../../model/charlm/testdata/corpus.txt")
	if err != nil {
		t.Fatal(err)
	}
	cut := len(corpus) * 4 / 5
	train := writeFile(t, dir, "train.txt", string(corpus[:cut]))
	held := writeFile(t, dir, "held.txt", string(corpus[cut:]))

	m1 := filepath.Join(dir, "m1.charlm")
	tr := decode[modelJSON](t, c.ok("--home", home, "model", "train", "--data", train, "--out", m1, "--order", "3", "--json").stdout)
	pub := decode[objectJSON](t, c.ok("--home", home, "knowledge", "publish", train, "--password-file", pw, "--json").stdout)
	if tr.Order != 3 || tr.Name != "charlm-o3" || tr.TrainingBytes != uint64(cut) || tr.DataCID != pub.Body || tr.Entries == 0 || len(tr.WeightsHash) != 64 {
		t.Fatalf("trained %+v (published body %s)", tr, pub.Body)
	}
	artifact, err := os.ReadFile(m1)
	if err != nil || len(artifact) != tr.ArtifactBytes {
		t.Fatalf("artifact: %d bytes (printed %d), %v", len(artifact), tr.ArtifactBytes, err)
	}
	// Deterministic: training again gives the same bytes.
	m1again := filepath.Join(dir, "m1again.charlm")
	c.ok("--home", home, "model", "train", "--data", train, "--out", m1again, "--order", "3")
	if b, _ := os.ReadFile(m1again); !bytes.Equal(b, artifact) {
		t.Error("training twice gives two artifacts")
	}
	// By CID from the library: the same weights, the object's CID on the card.
	m2 := filepath.Join(dir, "m2.charlm")
	tr2 := decode[modelJSON](t, c.ok("--home", home, "model", "train", "--data", pub.CID, "--out", m2, "--order", "3", "--name", "by-cid", "--json").stdout)
	if tr2.WeightsHash != tr.WeightsHash || tr2.DataCID != pub.CID || tr2.Name != "by-cid" {
		t.Errorf("trained by CID %+v, by file %+v", tr2, tr)
	}
	if out := c.ok("--home", home, "model", "train", "--data", train, "--out", m2, "--order", "3").stdout; !strings.Contains(out, "weights hash "+tr.WeightsHash) || !strings.Contains(out, "wrote "+m2) {
		t.Errorf("train prints %q", out)
	}

	in := decode[modelJSON](t, c.ok("--home", home, "model", "inspect", m1, "--json").stdout)
	if in.Card != tr.Card || in.WeightsHash != tr.WeightsHash || in.Entries != tr.Entries || in.FormatVersion != 1 {
		t.Errorf("inspect %+v, trained %+v", in, tr)
	}
	if out := c.ok("--home", home, "model", "inspect", m1).stdout; !strings.Contains(out, tr.WeightsHash) || !strings.Contains(out, "charlm-o3") {
		t.Errorf("inspect prints %q", out)
	}

	// Evaluation: held-out loss, lower for order 3 than order 1.
	ev := decode[evalOut](t, c.ok("--home", home, "model", "eval", "--model", m1, "--data", held, "--json").stdout)
	m0 := filepath.Join(dir, "m0.charlm")
	c.ok("--home", home, "model", "train", "--data", pub.CID, "--out", m0, "--order", "1")
	ev1 := decode[evalOut](t, c.ok("--home", home, "model", "eval", "--model", m0, "--data", held, "--json").stdout)
	if ev.Chars != len(corpus)-cut || ev.WeightsHash != tr.WeightsHash || ev.Order != 3 || !(ev.BitsPerChar > 1 && ev.BitsPerChar < ev1.BitsPerChar) {
		t.Errorf("eval order 3 %+v, order 1 %+v", ev, ev1)
	}
	if out := c.ok("--home", home, "model", "eval", "--model", m1, "--data", held).stdout; !strings.Contains(out, "bits/char") || !strings.Contains(out, tr.WeightsHash) {
		t.Errorf("eval prints %q", out)
	}
	// Evaluating by CID gives the same loss as the file.
	evc := decode[evalOut](t, c.ok("--home", home, "model", "eval", "--model", m1, "--data", pub.CID, "--json").stdout)
	evf := decode[evalOut](t, c.ok("--home", home, "model", "eval", "--model", m1, "--data", train, "--json").stdout)
	if evc != evf {
		t.Errorf("eval by CID %+v, by file %+v", evc, evf)
	}
	// --max-bytes trains on a prefix.
	small := decode[modelJSON](t, c.ok("--home", home, "model", "train", "--data", train, "--out", m0, "--max-bytes", "1000", "--json").stdout)
	if small.TrainingBytes != 1000 || small.DataCID != pub.Body {
		t.Errorf("--max-bytes 1000: %+v", small)
	}

	// Bad input: exit 2 with a message, nothing written.
	notArtifact := writeFile(t, dir, "not.charlm", "CTCHARLM but not a model")
	empty := writeFile(t, dir, "empty.txt", "")
	missing := filepath.Join(dir, "never.charlm")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"model", "train", "--out", missing}, "required flag"},
		{[]string{"model", "train", "--data", train}, "required flag"},
		{[]string{"model", "train", "--data", train, "--out", missing, "--order", "9"}, "--order 9"},
		{[]string{"model", "train", "--data", train, "--out", missing, "--max-entries", "10"}, "--max-entries"},
		{[]string{"model", "train", "--data", train, "--out", missing, "--max-bytes", "-1"}, "--max-bytes"},
		{[]string{"model", "train", "--data", filepath.Join(dir, "nofile"), "--out", missing}, "neither a file nor a knowledge CID"},
		{[]string{"model", "train", "--data", empty, "--out", missing}, "no text"},
		{[]string{"model", "train", "--data", dir, "--out", missing}, "not a regular file"},
		{[]string{"model", "eval", "--model", notArtifact, "--data", held}, "bad model artifact"},
		{[]string{"model", "eval", "--model", missing, "--data", held}, "no such file"},
		{[]string{"model", "eval", "--model", m1, "--data", held, "--max-bytes", "10"}, "over --max-bytes"},
		{[]string{"model", "eval", "--model", m1, "--data", empty}, "no text"},
		{[]string{"model", "inspect", notArtifact}, "bad model artifact"},
		{[]string{"model", "inspect", held}, "not a charlm artifact"},
		{[]string{"model", "inspect"}, "accepts 1 arg"},
	} {
		r := c.fail(2, append([]string{"--home", home}, tc.args...)...)
		if !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: %q, want it to say %q", tc.args, r.stderr, tc.want)
		}
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("a failed train left %s: %v", missing, err)
	}
	// A CID the library does not hold: exit 1, and how to fetch it.
	r := c.fail(1, "--home", home, "model", "train", "--data", "bafkreihm3rktn5z33luic3youqdsn326toaq3ekesmdvsa53sbrd3f5r3a", "--out", missing)
	if !strings.Contains(r.stderr, "not in the library") || !strings.Contains(r.stderr, "--peer") {
		t.Errorf("unheld CID: %s", r.stderr)
	}
	// An --out in a missing directory fails and leaves no temporary file.
	r = c.fail(1, "--home", home, "model", "train", "--data", train, "--out", filepath.Join(dir, "nodir", "m.charlm"))
	if !strings.Contains(r.stderr, "writing the model") {
		t.Errorf("--out in a missing directory: %s", r.stderr)
	}
	if es, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(es) > 0 {
		t.Errorf("temporary files left: %v", es)
	}
}

// train --peer fetches the text by CID from the swarm, as knowledge get
// --peer does; eval then finds it in the local library.
func TestModelTrainFromSwarm(t *testing.T) {
	lib, addr := servingLibrary(t)
	corpus, err := os.ReadFile("../../model/charlm/testdata/corpus.txt")
	if err != nil {
		t.Fatal(err)
	}
	obj, err := lib.Publish(context.Background(), bytes.NewReader(corpus), knowledge.Meta{Title: "corpus"})
	if obj == nil {
		t.Fatalf("publish: %v", err) // a lone server's provide fails; the object is stored
	}
	c := newCLI(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	pw := writeFile(t, dir, "pw", "pw")
	c.ok("--home", home, "wallet", "new", "--wallet", "default", "--password-file", pw)
	file := writeFile(t, dir, "corpus.txt", string(corpus))
	byFile := decode[modelJSON](t, c.ok("--home", home, "model", "train", "--data", file, "--out", filepath.Join(dir, "f.charlm"), "--json").stdout)
	m := filepath.Join(dir, "swarm.charlm")
	bySwarm := decode[modelJSON](t, c.ok("--home", home, "--log-level", "error", "model", "train", "--data", obj.CID.String(),
		"--out", m, "--peer", addr, "--listen", "/ip4/127.0.0.1/tcp/0", "--json").stdout)
	if bySwarm.WeightsHash != byFile.WeightsHash || bySwarm.DataCID != obj.CID.String() || byFile.DataCID != obj.Body.String() {
		t.Errorf("from the swarm %+v, from the file %+v (object %s, body %s)", bySwarm, byFile, obj.CID, obj.Body)
	}
	ev := decode[evalOut](t, c.ok("--home", home, "model", "eval", "--model", m, "--data", obj.CID.String(), "--json").stdout)
	if ev.Chars != len(corpus) || ev.WeightsHash != byFile.WeightsHash {
		t.Errorf("eval of the fetched text: %+v", ev)
	}
}

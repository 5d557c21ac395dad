package examples

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cybertensor/cybertensor/subnet"
)

var updateLocks = flag.Bool("update", false, "rewrite the examples' files: sections (their locks) from the files")

// lockComment starts the files: section subnet.Lock appends.
const lockComment = "\n# The lock:"

// Each example's spec is locked: its files: section names every file it
// refers to with that file's CID (and translate's tasks.cid its dataset's), and subnet.Resolve accepts it from its
// directory — so the spec hash a subnet owner puts on chain covers the
// task program, dataset, prompt, judge and evaluator that run. A changed file fails
// here until the lock is rewritten with
//
//	go test ./examples -run TestExampleLocks -update
func TestExampleLocks(t *testing.T) {
	python3(t) // Resolve looks the hook programs up in PATH
	for _, path := range []string{"summarize/spec.yaml", "translate/spec.yaml", "code/spec.yaml", "chat/spec.yaml",
		"model-lm/spec.yaml", "model-lm/torch-spec.yaml"} {
		dir := filepath.Dir(path)
		text, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if *updateLocks {
			if i := bytes.Index(text, []byte(lockComment)); i >= 0 {
				text = append(text[:i:i], '\n')
			}
			unlocked, err := subnet.Parse(text)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			datasets := []struct{ path, cid string }{{unlocked.Tasks.Path, unlocked.Tasks.CID}}
			for _, m := range unlocked.EffectiveMechanisms() {
				if e := m.Evaluate; e != nil {
					datasets = append(datasets, struct{ path, cid string }{e.Data.Path, e.Data.CID})
				}
			}
			for _, ds := range datasets {
				if ds.path == "" || ds.cid == "" {
					continue
				}
				// The dataset's cid: follows its file too.
				c, err := subnet.FileCID(filepath.Join(dir, ds.path))
				if err != nil {
					t.Fatal(err)
				}
				text = bytes.ReplaceAll(text, []byte("cid: "+ds.cid), []byte("cid: "+c))
				if unlocked, err = subnet.Parse(text); err != nil {
					t.Fatalf("%s: %v", path, err)
				}
			}
			locked, err := subnet.Lock(unlocked, dir)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if err := os.WriteFile(path, locked.Text(), 0o644); err != nil {
				t.Fatal(err)
			}
			text = locked.Text()
		}
		spec, err := subnet.Parse(text)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		var locked []string
		for f := range spec.Files {
			locked = append(locked, f)
		}
		slices.Sort(locked)
		if refs := spec.ReferencedFiles(); !slices.Equal(locked, refs) {
			t.Errorf("%s locks %v, refers to %v", path, locked, refs)
		}
		if err := subnet.Resolve(spec, dir); err != nil {
			t.Errorf("%s: %v\n(after changing a file the spec refers to: go test ./examples -run TestExampleLocks -update)", path, err)
		}
	}
}

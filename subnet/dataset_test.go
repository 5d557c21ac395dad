package subnet

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseDataset(t *testing.T) {
	items, err := ParseDataset(strings.NewReader("# capitals\n{\"prompt\": \"Capital of France?\", \"answer\": \"Paris\"}\n\n  {\"answer\":\"4\",\"prompt\":\"2+2?\"}  \n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || items[0] != (DatasetItem{"Capital of France?", "Paris"}) || items[1].Answer != "4" {
		t.Fatalf("items %+v", items)
	}
	for _, c := range []struct {
		name, text string
		line       int
		want       string
	}{
		{"empty", "", 0, "no items"},
		{"comments only", "# nothing\n\n", 0, "no items"},
		{"not json", "{\"prompt\":\"a\",\"answer\":\"b\"}\nhello\n", 2, "not a JSON object"},
		{"unknown field", "{\"prompt\":\"a\",\"answer\":\"b\",\"hint\":\"c\"}", 1, "unknown field"},
		{"no answer", "{\"prompt\":\"a\"}", 1, "must not be empty"},
		{"blank prompt", "{\"prompt\":\"  \",\"answer\":\"b\"}", 1, "must not be empty"},
		{"two values", "{\"prompt\":\"a\",\"answer\":\"b\"} {}", 1, "more than one"},
		{"array", "[1,2]", 1, "not a JSON object"},
		{"long answer", "{\"prompt\":\"a\",\"answer\":\"" + strings.Repeat("x", MaxAnswerSize+1) + "\"}", 1, "answer of"},
		{"long line", "{\"prompt\":\"" + strings.Repeat("x", 3*MaxPromptSize) + "\",\"answer\":\"b\"}", 1, "line too long"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseDataset(strings.NewReader(c.text))
			var de *DatasetError
			if !errors.As(err, &de) {
				t.Fatalf("error %v, want a *DatasetError", err)
			}
			if de.Line != c.line || !strings.Contains(de.Reason, c.want) {
				t.Fatalf("error %q (line %d), want line %d and %q", err, de.Line, c.line, c.want)
			}
		})
	}
}

func FuzzParseDataset(f *testing.F) {
	f.Add([]byte("{\"prompt\":\"a\",\"answer\":\"b\"}\n"))
	f.Add([]byte("# c\n\n{\"prompt\":\"a\",\"answer\":\"b\"}\n{\"prompt\":\"x\"}"))
	f.Add([]byte("[]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		items, err := ParseDataset(strings.NewReader(string(data)))
		if err != nil {
			var de *DatasetError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is not a *DatasetError", err)
			}
			return
		}
		if len(items) == 0 {
			t.Fatal("accepted a dataset with no items")
		}
		for _, it := range items {
			if strings.TrimSpace(it.Prompt) == "" || strings.TrimSpace(it.Answer) == "" || len(it.Prompt) > MaxPromptSize || len(it.Answer) > MaxAnswerSize {
				t.Fatalf("accepted item %+v", it)
			}
		}
	})
}

// The example specs in the repository parse, and their datasets load.
func TestExampleSpecs(t *testing.T) {
	specs, err := filepath.Glob("../examples/*/spec.yaml")
	if err != nil || len(specs) == 0 {
		t.Fatalf("no example specs: %v", err)
	}
	for _, path := range specs {
		text, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		s, err := Parse(text)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if s.Tasks.Source == FromDataset {
			f, err := os.Open(filepath.Join(filepath.Dir(path), s.Tasks.Path))
			if err != nil {
				t.Fatal(err)
			}
			if s.Version >= 2 {
				// v2 task lines, each a valid task for its synapse.
				lines, err := ParseTaskLines(f, 0)
				f.Close()
				if err != nil {
					t.Fatalf("%s's dataset: %v", path, err)
				}
				syn := s.Synapse(s.TaskSynapseOf(s.Tasks))
				for i, l := range lines {
					if _, err := syn.TaskFromLine(l); err != nil {
						t.Fatalf("%s's dataset, task %d: %v", path, i+1, err)
					}
				}
				continue
			}
			items, err := ParseDataset(f)
			f.Close()
			if err != nil || len(items) == 0 {
				t.Fatalf("%s's dataset: %d items, %v", path, len(items), err)
			}
		}
	}
}

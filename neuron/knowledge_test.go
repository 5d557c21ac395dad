package neuron

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/backend"
)

var clozeDocs = []backend.Document{
	{ID: "sky", Text: "The sky looks blue because air molecules scatter short wavelengths more strongly. " +
		"This effect is called Rayleigh scattering after the physicist who described it."},
	{ID: "bees", Text: "Honey bees communicate the direction of flowers through a waggle dance. " +
		"The angle of the dance relative to gravity encodes the direction relative to the sun."},
}

// Cloze tasks hide a word of a published sentence; a model holding the
// documents answers them, one without them does not.
func TestClozeTasks(t *testing.T) {
	tasks := ClozeTasks(clozeDocs, 10)
	if len(tasks) < 3 {
		t.Fatalf("only %d tasks from %d documents", len(tasks), len(clozeDocs))
	}
	knows := backend.NewRetrieval(clozeDocs...)
	ignorant := backend.NewRetrieval(backend.Document{ID: "other", Text: "Rivers flow downhill toward the ocean over many years."})
	answer := func(m *backend.Retrieval, prompt string) []byte {
		var out strings.Builder
		if err := m.Generate(context.Background(), prompt, func(s string) error { out.WriteString(s); return nil }); err != nil {
			return nil // no passage: no answer
		}
		return []byte(out.String())
	}
	for _, task := range tasks {
		if !strings.Contains(task.Prompt, "____") || strings.Contains(strings.ToLower(task.Prompt), strings.ToLower(task.Answer)) {
			t.Fatalf("task gives its answer away: %+v", task)
		}
		if task.Score(answer(knows, task.Prompt), 0, time.Second) == 0 {
			t.Errorf("the model holding the documents fails %+v", task)
		}
		if task.Score(answer(ignorant, task.Prompt), 0, time.Second) != 0 {
			t.Errorf("a model without the documents passes %+v", task)
		}
	}
	if got := ClozeTasks(clozeDocs, 2); len(got) != 2 {
		t.Fatalf("max 2 gave %d", len(got))
	}
}

func TestSplitSentences(t *testing.T) {
	got := splitSentences("One. Two! Three? Four 3.5 percent.\nFive")
	want := []string{"One.", "Two!", "Three?", "Four 3.5 percent.", "Five"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q", got)
	}
}

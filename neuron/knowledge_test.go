package neuron

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/backend"
	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/subnet"
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

// A subnet spec's reward expression replaces the built-in scoring.
func TestScoreResultWithReward(t *testing.T) {
	reward, err := subnet.NewReward(`contains_text(answer, expected) ? latency_score(latency_ms, timeout_ms) : 0.0`)
	if err != nil {
		t.Fatal(err)
	}
	task := Task{Prompt: "Why is the sky blue?", Answer: "Rayleigh"}
	log := slog.New(slog.DiscardHandler)
	for _, c := range []struct {
		name   string
		r      protocol.Result
		reward *subnet.Reward
		want   float64
	}{
		{"reward: right, at half the deadline", protocol.Result{Status: protocol.StatusOK, Body: []byte("Rayleigh scattering"), Latency: 500 * time.Millisecond}, reward, 0.75},
		{"reward: wrong", protocol.Result{Status: protocol.StatusOK, Body: []byte("Mie scattering")}, reward, 0},
		{"reward: timed out", protocol.Result{Status: protocol.StatusTimeout, Latency: 2 * time.Second}, reward, 0},
		{"built-in: right, instant", protocol.Result{Status: protocol.StatusOK, Body: []byte("rayleigh")}, nil, 1},
		{"built-in: not OK", protocol.Result{Status: protocol.StatusOverloaded, Body: []byte("rayleigh")}, nil, 0},
	} {
		if got := scoreResult(task.asTask(), c.r, c.reward, time.Second, minerChain{}, log); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	// A status-aware expression sees the status by name.
	byStatus, err := subnet.NewReward(`status == "overloaded" ? 0.5 : 0.0`)
	if err != nil {
		t.Fatal(err)
	}
	if got := scoreResult(task.asTask(), protocol.Result{Status: protocol.StatusOverloaded}, byStatus, time.Second, minerChain{}, log); got != 0.5 {
		t.Fatalf("status by name: %v", got)
	}
}

// A rotation draws k distinct members per round and every member within
// ceil(n/k) rounds, whatever joins or leaves.
func TestRotation(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	members := func(n int) []int {
		xs := make([]int, n)
		for i := range xs {
			xs[i] = i
		}
		return xs
	}
	for _, c := range []struct{ n, k, want int }{{0, 3, 0}, {5, 0, 5}, {5, 5, 5}, {5, 9, 5}, {5, 1, 1}, {100, 16, 16}} {
		var r rotation
		got := r.next(rng, members(c.n), c.k)
		if len(got) != c.want {
			t.Fatalf("n %d k %d: %d drawn, want %d", c.n, c.k, len(got), c.want)
		}
	}
	for _, c := range []struct{ n, k int }{{10, 3}, {57, 16}, {7, 6}, {100, 1}} {
		var r rotation
		for cycle := range 5 {
			rounds := (c.n + c.k - 1) / c.k
			seen := map[int]int{}
			for range rounds {
				got := r.next(rng, members(c.n), c.k)
				round := map[int]bool{}
				for _, m := range got {
					if m < 0 || m >= c.n || round[m] {
						t.Fatalf("n %d k %d: round drew %v", c.n, c.k, got)
					}
					round[m] = true
					seen[m]++
				}
				if len(got) != c.k {
					t.Fatalf("n %d k %d: %d drawn", c.n, c.k, len(got))
				}
			}
			if cycle == 0 && len(seen) != c.n {
				t.Fatalf("n %d k %d: %d of %d members drawn in the first %d rounds", c.n, c.k, len(seen), c.n, rounds)
			}
		}
	}
	// Members that left are never drawn; newcomers are drawn by the next
	// cycle.
	var r rotation
	r.next(rng, members(10), 4)
	later := []int{0, 1, 2, 3, 4, 20, 21}
	seen := map[int]bool{}
	for range 4 {
		for _, m := range r.next(rng, later, 4) {
			if m >= 5 && m < 20 {
				t.Fatalf("drew %d, which left", m)
			}
			seen[m] = true
		}
	}
	if !seen[20] || !seen[21] {
		t.Fatalf("newcomers not drawn: %v", seen)
	}
}

// Announcements follow the swarm's growth at a falling rate: the first
// peer, each doubling, and otherwise growth after a pause that doubles.
func TestAnnouncePace(t *testing.T) {
	var p announcePace
	t0 := time.Unix(0, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	steps := []struct {
		peers, ms int
		want      bool
	}{
		{0, 0, false},     // nobody to tell
		{1, 100, true},    // the first peer; pause 1 s
		{1, 5000, false},  // no growth
		{2, 5100, true},   // doubled; pause 2 s
		{3, 5200, false},  // grown, within the pause
		{3, 6200, false},  // 1.1 s: still within it
		{3, 7200, true},   // 2.1 s: grown after the pause; pause 4 s
		{4, 8000, false},  // within it
		{5, 11300, true},  // 4.1 s later; pause 8 s
		{9, 12000, false}, // not double of 5, pause not passed
		{10, 12100, true}, // doubled
		{2, 12200, false}, // shrank
	}
	for i, s := range steps {
		if got := p.due(s.peers, at(s.ms), 10*time.Minute); got != s.want {
			t.Fatalf("step %d (%d peers at %d ms): due %v, want %v", i, s.peers, s.ms, got, s.want)
		}
	}
	// Growth one peer at a time, a block apart, over a minute: a handful
	// of announcements, not one per peer.
	var q announcePace
	n := 0
	for i := 1; i <= 240; i++ {
		if q.due(i/4+1, at(i*250), 10*time.Minute) {
			n++
		}
	}
	if n > 12 {
		t.Fatalf("%d announcements while 61 peers joined over a minute", n)
	}
}

// provideCopy advertises every copy in a subnet no larger than
// advertisedCopies, and in a larger one each with the chance that keeps
// the expected number of advertised copies at advertisedCopies.
func TestProvideCopy(t *testing.T) {
	for _, tc := range []struct {
		members int
		u       float64
		want    bool
	}{
		{0, 0.99, true}, // the subnet's size not known yet
		{1, 0.99, true},
		{advertisedCopies, 0.99, true},
		{advertisedCopies + 1, 0, true},
		{advertisedCopies + 1, 0.99, false},
		{256, float64(advertisedCopies)/256 - 1e-9, true},
		{256, float64(advertisedCopies) / 256, false},
	} {
		if got := provideCopy(tc.members, tc.u); got != tc.want {
			t.Errorf("provideCopy(%d, %v) = %v, want %v", tc.members, tc.u, got, tc.want)
		}
	}
	// Over many draws, about advertisedCopies of a 256-member subnet.
	rng := rand.New(rand.NewPCG(1, 2))
	const trials = 2000
	total := 0
	for range trials {
		for range 256 {
			if provideCopy(256, rng.Float64()) {
				total++
			}
		}
	}
	if mean := float64(total) / trials; mean < advertisedCopies*0.9 || mean > advertisedCopies*1.1 {
		t.Errorf("a 256-member subnet advertised %.2f copies on average, want about %d", mean, advertisedCopies)
	}
}

// fetchJitter spreads a subnet's fetches of an announced object over 10 ms
// a member, at most 2 s.
func TestFetchJitter(t *testing.T) {
	for _, tc := range []struct {
		members int
		u       float64
		want    time.Duration
	}{
		{0, 0.5, 0},
		{16, 0, 0},
		{16, 0.5, 80 * time.Millisecond},
		{128, 0.999, 1278720 * time.Microsecond},
		{256, 0.5, time.Second},
		{4096, 0.999, 1998 * time.Millisecond},
	} {
		if got := fetchJitter(tc.members, tc.u); got != tc.want {
			t.Errorf("fetchJitter(%d, %v) = %v, want %v", tc.members, tc.u, got, tc.want)
		}
	}
}

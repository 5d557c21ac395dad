package neuron

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/hook"
	"github.com/cybertensor/cybertensor/knowledge"
	"github.com/cybertensor/cybertensor/subnet"
)

// upperSpecSynapse is upper.v1 as a parsed spec declares it.
func upperSpecSynapse(t testing.TB) *subnet.Synapse {
	t.Helper()
	spec, err := subnet.Parse([]byte("version: 2\nname: t\nsynapses:\n" + upperSynapse +
		"tasks: {source: http, url: 'http://127.0.0.1:1/'}\nreward: '1.0'\nquery: {every: 1, timeout: 1s}\nalpha: 0.5\nweights_every: 3\n"))
	if err != nil {
		t.Fatal(err)
	}
	return spec.Synapse("upper.v1")
}

// An http task source GETs its endpoint for each batch (JSON lines or a
// JSON array) and refuses a batch with a bad task whole, naming it; a
// failing endpoint is a task source failure.
func TestHTTPTasks(t *testing.T) {
	syn := upperSpecSynapse(t)
	var reply atomic.Value
	var gets atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		s := reply.Load().(string)
		if s == "500" {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		w.Write([]byte(s))
	}))
	defer srv.Close()
	cfg := hook.DefaultHTTPConfig("sn1/main/tasks", srv.URL)
	cfg.Logger = slog.New(slog.DiscardHandler)
	src, err := newHTTPTasks(cfg, syn)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx := context.Background()
	for _, c := range []struct {
		name, reply string
		want        []string // request bodies, or nil for a failure
		errHas      string
	}{
		{"array", `[{"request": {"text": "a"}, "expected": "A"}, {"request": {"text": "b"}}]`, []string{`{"text":"a"}`, `{"text":"b"}`}, ""},
		{"lines", "{\"request\": {\"text\": \"c\"}}\n# a comment\n{\"request\": {\"text\": \"d\"}, \"meta\": {\"id\": 4}}\n", []string{`{"text":"c"}`, `{"text":"d"}`}, ""},
		{"a request the schema refuses", `[{"request": {"text": "ok"}}, {"request": {"text": 5}}]`, nil, "task 2"},
		{"an unknown field", `{"request": {"text": "x"}, "answer": "X"}`, nil, "unknown field"},
		{"not JSON", `tasks!`, nil, "line 1"},
		{"a server error", "500", nil, "status"},
	} {
		reply.Store(c.reply)
		src.buf = nil
		src.newRound()
		var got []string
		var err error
		for range len(c.want) + boolInt(c.want == nil) {
			var task subnet.Task
			if task, err = src.next(ctx); err != nil {
				break
			}
			got = append(got, string(task.Body))
		}
		switch {
		case c.want == nil && (err == nil || !errors.Is(err, errTaskSource) || !strings.Contains(err.Error(), c.errHas)):
			t.Errorf("%s: %v, want a task source failure naming %q", c.name, err, c.errHas)
		case c.want != nil && (err != nil || fmt.Sprint(got) != fmt.Sprint(c.want)):
			t.Errorf("%s: %v, %v; want %v", c.name, got, err, c.want)
		}
	}
	// A source giving fewer tasks than a round needs is fetched again, at
	// most maxRefills times a round.
	reply.Store(`[{"request": {"text": "one"}}]`)
	src.buf = nil
	src.newRound()
	gets.Store(0)
	for i := range maxRefills + 1 {
		_, err := src.next(ctx)
		if (i < maxRefills) != (err == nil) {
			t.Fatalf("task %d of a round: %v", i, err)
		}
	}
	if n := gets.Load(); n != maxRefills {
		t.Fatalf("%d GETs in a round, want %d", n, maxRefills)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// A dataset by CID is read from the knowledge library once, verified and
// bounded; v1-form lines ({"prompt", "answer"}) are text.generate tasks.
func TestDatasetByCID(t *testing.T) {
	cfg := knowledge.DefaultTestConfig(t.TempDir())
	cfg.Key = testKey(t, "dataset", 0)
	lib, err := knowledge.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer lib.Close()
	v1 := "{\"prompt\": \"Why is the sky blue?\", \"answer\": \"Rayleigh\"}\n{\"prompt\": \"2+2?\", \"answer\": \"4\"}\n"
	id := publish(t, lib, []byte(v1), "qa")
	d := &datasetTasks{syn: subnet.BuiltinSynapse("text.generate"), cid: id, lib: func() *knowledge.Library { return lib },
		rng: rand.New(rand.NewPCG(1, 2))}
	seen := map[string]string{}
	for range 20 {
		task, err := d.next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		seen[string(task.Body)] = task.Expected
	}
	if len(seen) != 2 || seen[`{"prompt":"Why is the sky blue?"}`] != "Rayleigh" {
		t.Fatalf("tasks %v", seen)
	}
	// Not in the library (offline: nothing to fetch from), and no library.
	missing := &datasetTasks{syn: subnet.BuiltinSynapse("text.generate"), cid: "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
		lib: func() *knowledge.Library { return lib }, rng: rand.New(rand.NewPCG(1, 2))}
	if _, err := missing.next(context.Background()); !errors.Is(err, errTaskSource) {
		t.Fatalf("a missing dataset: %v", err)
	}
	closed := &datasetTasks{syn: subnet.BuiltinSynapse("text.generate"), cid: id, lib: func() *knowledge.Library { return nil }, rng: rand.New(rand.NewPCG(1, 2))}
	if _, err := closed.next(context.Background()); !errors.Is(err, errTaskSource) {
		t.Fatalf("no library: %v", err)
	}
	if w := (&boundedBuffer{max: 4}); func() error { _, err := w.Write([]byte("12345")); return err }() == nil {
		t.Fatal("a bounded buffer took more than its bound")
	}
}

// The judge's key comes from the validator's config first, then the
// environment variable the spec names; a named variable nobody set is an
// error, not a judge that every call refuses.
func TestJudgeAPIKey(t *testing.T) {
	env := func(name string) string {
		if name == "SET" {
			return "from-env"
		}
		return ""
	}
	for _, c := range []struct {
		name    string
		key     string
		getenv  func(string) string
		keyEnv  string
		want    string
		wantErr bool
	}{
		{"no key at all", "", env, "", "", false},
		{"the config's key wins", "flag", env, "SET", "flag", false},
		{"from the environment", "", env, "SET", "from-env", false},
		{"a variable nobody set", "", env, "UNSET", "", true},
		{"no environment reader", "", nil, "SET", "", true},
	} {
		e := judgeEnv{cfg: ValidatorConfig{JudgeKey: c.key, Getenv: c.getenv}}
		got, err := e.apiKey(&subnet.Judge{Kind: subnet.JudgeLLM, APIKeyEnv: c.keyEnv})
		if got != c.want || (err != nil) != c.wantErr {
			t.Errorf("%s: %q, %v", c.name, got, err)
		}
	}
	l := HookLimits(subnet.HookLimits{Timeout: 3 * time.Second, MemoryMB: 2})
	if d := hook.DefaultLimits(); l.Timeout != 3*time.Second || l.MemoryBytes != 2<<20 || l.CPUSeconds != d.CPUSeconds || l.Concurrency != d.Concurrency || l.MaxOutput != d.MaxOutput {
		t.Fatalf("hook limits %+v", l)
	}
}

// Task lines from a task program or endpoint (hostile bytes): parsing
// never panics, gives at most the tasks asked for, and every task it
// accepts is a request the synapse accepts.
func FuzzTasksFromLines(f *testing.F) {
	f.Add([]byte(`[{"request": {"text": "a"}, "expected": "A"}]`))
	f.Add([]byte("{\"request\": {\"text\": \"c\"}}\n{\"request\": {\"text\": \"d\"}, \"meta\": [1]}\n"))
	f.Add([]byte(`{"prompt": "p", "answer": "a"}`))
	f.Add([]byte(`[{"request": {"text": 5}}]`))
	syn := upperSpecSynapse(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		tasks, err := tasksFromLines(syn, data, 8)
		if err != nil {
			if tasks != nil {
				t.Fatal("tasks with an error")
			}
			return
		}
		if len(tasks) == 0 || len(tasks) > 8 {
			t.Fatalf("%d tasks", len(tasks))
		}
		for _, task := range tasks {
			if err := syn.ValidateRequest(task.Body); err != nil || task.Synapse != "upper.v1" || !bytes.HasPrefix(task.Body, []byte("{")) {
				t.Fatalf("accepted %q: %v", task.Body, err)
			}
		}
	})
}

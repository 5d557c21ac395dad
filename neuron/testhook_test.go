package neuron

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"
)

// The test binary doubles as the hook programs of v2 specs in tests: run
// as "<test binary> neuron-test-hook ROLE ARGS…", TestMain hands it to
// runTestHook instead of running tests.
const testHookArg = "neuron-test-hook"

// runTestHookIfAsked runs a test hook and exits, when the binary was run
// as one.
func runTestHookIfAsked() {
	if len(os.Args) > 2 && os.Args[1] == testHookArg {
		os.Exit(runTestHook(os.Args[2:]))
	}
}

// runTestHook is one of these programs:
//
//	tasks KIND N   prints N task lines {"request": {"text": "w…"}, "expected": KIND(text)}
//	               with KIND upper or lower
//	fail           a task program that fails (exit status 3)
//	judge          an exec judge: score 1 if the answer equals the expected text, else 0;
//	               each answer written (and flushed) on its own
//	judge-batched  the same judge, flushing its answers only when it has read
//	               every request it was sent (one write per batch)
//	judge-crash    exits at its first request
//	judge-hang     reads requests and never answers
//	judge-garbage  answers {"score": 7} (out of [0,1])
//	judge-contains WORD  scores 1 if the answer contains WORD, else 0,
//	               needing no expected answer (organic scoring)
//	evaluate ARTIFACT SET  a model evaluator: the artifact's text is its
//	               loss ({"loss": x}); an artifact "crash" exits 3, "hang"
//	               never finishes, and an empty evaluation set exits 4
func runTestHook(args []string) int {
	switch args[0] {
	case "tasks":
		n := 16
		fmt.Sscan(args[2], &n)
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(os.Getpid())))
		w := bufio.NewWriter(os.Stdout)
		for range n {
			text := fmt.Sprintf("Word%dx%d", rng.IntN(1000), rng.IntN(1000))
			want := strings.ToUpper(text)
			if args[1] == "lower" {
				want = strings.ToLower(text)
			}
			line, _ := json.Marshal(map[string]any{"request": map[string]string{"text": text}, "expected": want})
			w.Write(append(line, '\n'))
		}
		w.Flush()
		return 0
	case "fail":
		fmt.Fprintln(os.Stderr, "no tasks today")
		return 3
	case "judge-batched":
		in := bufio.NewReaderSize(os.Stdin, 1<<20)
		out := bufio.NewWriterSize(os.Stdout, 64<<10)
		for {
			line, err := in.ReadSlice('\n')
			if err != nil {
				return 0
			}
			score := judgeLine(line)
			fmt.Fprintf(out, `{"score": %v, "fields": {"exact": %v}}`+"\n", score, score == 1)
			if in.Buffered() == 0 {
				out.Flush()
			}
		}
	case "judge-contains":
		in := bufio.NewScanner(os.Stdin)
		in.Buffer(make([]byte, 1<<20), 1<<20)
		for in.Scan() {
			var req struct {
				Answer string `json:"answer"`
			}
			score := 0
			if json.Unmarshal(in.Bytes(), &req) == nil && strings.Contains(req.Answer, args[1]) {
				score = 1
			}
			fmt.Printf(`{"score": %d}`+"\n", score)
		}
		return 0
	case "evaluate":
		artifact, err := os.ReadFile(args[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		if set, err := os.ReadFile(args[2]); err != nil || len(set) == 0 {
			fmt.Fprintln(os.Stderr, "no evaluation set", err)
			return 4
		}
		if strings.TrimSpace(string(artifact)) == "hang" {
			time.Sleep(time.Hour) // until the hook's timeout kills it
		}
		if strings.TrimSpace(string(artifact)) == "crash" {
			fmt.Fprintln(os.Stderr, "evaluator crashed on purpose")
			return 3
		}
		if strings.TrimSpace(string(artifact)) == "not a model" {
			fmt.Println(`{"refused": "no weights in this file"}`)
			return 0
		}
		fmt.Printf(`{"loss": %s, "note": "from the test evaluator"}`+"\n", strings.TrimSpace(string(artifact)))
		return 0
	case "judge", "judge-crash", "judge-hang", "judge-garbage":
		in := bufio.NewScanner(os.Stdin)
		in.Buffer(make([]byte, 1<<20), 1<<20)
		for in.Scan() {
			switch args[0] {
			case "judge-crash":
				return 2
			case "judge-hang":
				continue
			case "judge-garbage":
				fmt.Println(`{"score": 7}`)
				continue
			}
			score := judgeLine(in.Bytes())
			fmt.Printf(`{"score": %v, "fields": {"exact": %v}}`+"\n", score, score == 1)
		}
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown test hook", args)
	return 1
}

// judgeLine is the test judges' score of a request line: 1 if the answer
// equals the expected text, else 0.
func judgeLine(line []byte) float64 {
	var req struct {
		Task struct {
			Expected string `json:"expected"`
		} `json:"task"`
		Answer string `json:"answer"`
	}
	if json.Unmarshal(line, &req) == nil && req.Answer == req.Task.Expected && req.Answer != "" {
		return 1
	}
	return 0
}

// testHookCommand is the YAML flow list of argv running test hook args.
func testHookCommand(t testing.TB, args ...string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	parts := []string{fmt.Sprintf("%q", exe), fmt.Sprintf("%q", testHookArg)}
	for _, a := range args {
		parts = append(parts, fmt.Sprintf("%q", a))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

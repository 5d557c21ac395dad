package subnet

import (
	"math"
	"strings"
	"testing"
)

// Each v2 function, through CEL; expected values computed by hand in the
// comments.
func TestRewardV2Functions(t *testing.T) {
	r := Response{
		Status: "ok", Valid: true, Answer: `{"a": {"b": [10, {"c": "x"}]}, "k/e~y": 1}`,
		Task:         map[string]any{"text": "hi", "n": 3.0},
		ExpectedJSON: map[string]any{"summary": "short"},
		Judge:        &JudgeResult{Score: 0.3, Fields: map[string]any{"reason": "ok"}},
		Mechanism:    "quality",
	}
	for _, c := range []struct {
		expr string
		want any // a float64 (within 1e-9), int64 or bool
	}{
		// edit_ratio: 1 − Levenshtein / max length in runes.
		{`edit_ratio("kitten", "sitting")`, 4.0 / 7.0}, // k→s, e→i, +g: 3 edits of 7
		{`edit_ratio("flaw", "lawn")`, 0.5},            // −f, +n: 2 of 4
		{`edit_ratio("héllo", "hello")`, 0.8},          // one rune of 5 (é is 2 bytes)
		{`edit_ratio("", "")`, 1.0},
		{`edit_ratio("abc", "")`, 0.0},
		{`edit_ratio("same", "same")`, 1.0},
		// rouge_l: LCS of terms L; P = L/|a|, R = L/|b|, F1 = 2PR/(P+R).
		{`rouge_l("the cat sat on the mat", "the cat is on the mat")`, 5.0 / 6.0}, // L = 5 (the cat on the mat), P = R = 5/6
		{`rouge_l("police killed the gunman", "the gunman kill police")`, 0.5},    // L = 2 (the gunman), P = R = 1/2
		{`rouge_l("a b c d", "A, c!")`, 2.0 / 3.0},                                // L = 2, P = 1/2, R = 1: 2·½·1/1½ = ⅔
		{`rouge_l("", "")`, 1.0},
		{`rouge_l("x", "")`, 0.0},
		{`rouge_l("x", "y")`, 0.0},
		// word_count: runs of non-space characters.
		{`double(word_count("  hello   world \n x"))`, 3.0},
		{`double(word_count(""))`, 0.0},
		// cosine.
		{`cosine([1.0, 0.0], [0.0, 1.0])`, 0.0},
		{`cosine([1, 2, 3], [1.0, 2.0, 3.0])`, 1.0},
		{`cosine([1.0, 0.0], [-1.0, 0.0])`, -1.0},
		{`cosine([3, 4], [4, 3])`, 0.96}, // 24/25
		{`cosine([0, 0], [1, 1])`, 0.0},
		{`cosine([1, 1], [1.0, 0.0])`, 0.7071067811865476}, // 1/√2
		// json_path: dotted or JSON pointer; null when missing.
		{`json_path(answer_json, "a.b.0") == 10.0`, true},
		{`json_path(answer_json, "/a/b/1/c") == "x"`, true},
		{`json_path(answer_json, "a.zz") == null`, true},
		{`json_path(answer_json, "a.b.5") == null`, true},
		{`json_path(answer_json, "a.b.0.c") == null`, true},
		{`json_path(answer_json, "/k~1e~0y") == 1.0`, true},
		{`json_path(answer_json, "") == answer_json`, true},
		{`json_path(task, "text") == "hi"`, true},
		{`json_path({"x": [1, 2]}, "x.1") == 2`, true},
		{`json_path(null, "a") == null`, true},
		// The v2 variables.
		{`judge.score * 2.0`, 0.6},
		{`judge.fields.reason == "ok"`, true},
		{`task.text == "hi" && task.n > 2`, true},
		{`expected_json.summary == "short"`, true},
		{`mechanism == "quality"`, true},
	} {
		rw, err := NewRewardV2(c.expr)
		if err != nil {
			t.Fatalf("%s: %v", c.expr, err)
		}
		val, err := rw.eval(r)
		if err != nil {
			t.Fatalf("%s: %v", c.expr, err)
		}
		switch want := c.want.(type) {
		case float64:
			got, ok := val.Value().(float64)
			if !ok || math.Abs(got-want) > 1e-9 {
				t.Errorf("%s = %v, want %v", c.expr, val, want)
			}
		default:
			if val.Value() != c.want {
				t.Errorf("%s = %v (%T), want %v", c.expr, val.Value(), val.Value(), c.want)
			}
		}
	}
}

func TestRewardV2Errors(t *testing.T) {
	r := Response{Status: "ok", Answer: "not json"}
	for _, c := range []struct{ expr, err string }{
		{`cosine([1.0], [1.0, 2.0]) > 0.0`, "vectors of 1 and 2"},
		{`cosine(["a"], [1.0]) > 0.0`, "not a number"},
		{`judge.score`, "not judged"},
		{`edit_ratio(answer, "` + strings.Repeat("a", 600) + `") > 0.0`, ""}, // 8 × 600: fine
	} {
		rw, err := NewRewardV2(c.expr)
		if err != nil {
			t.Fatalf("%s: %v", c.expr, err)
		}
		_, err = rw.Score(r)
		if c.err == "" {
			if err != nil {
				t.Errorf("%s: %v", c.expr, err)
			}
		} else if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: %v, want %q", c.expr, err, c.err)
		}
	}
	// answer_json is null for an answer that is not JSON.
	rw, _ := NewRewardV2(`answer_json == null`)
	if got, err := rw.Score(r); got != 1 || err != nil {
		t.Errorf("answer_json of text: %v %v", got, err)
	}
	// Quadratic functions refuse texts whose product is too large.
	long := strings.Repeat("a", 3000)
	if _, err := editRatio(long, long); err == nil {
		t.Error("edit_ratio of 3,000 × 3,000 runes ran")
	}
	if _, err := rougeL(strings.Repeat("w ", 3000), strings.Repeat("w ", 3000)); err == nil {
		t.Error("rouge_l of 3,000 × 3,000 terms ran")
	}
	// v1 rewards do not see v2's functions or variables.
	for _, expr := range []string{`word_count(answer) > 0`, `judge.score`, `mechanism == ""`} {
		if _, err := NewReward(expr); err == nil {
			t.Errorf("v1 compiled %s", expr)
		}
	}
	if math.IsNaN(func() float64 { c, _ := cosine([]float64{math.Inf(1)}, []float64{math.Inf(1)}); return c }()) {
		t.Error("cosine gave NaN")
	}
}

package judge

import (
	"math"
	"strings"
	"testing"
)

func TestParseScore(t *testing.T) {
	const fail = -1.0
	cases := []struct {
		name  string
		reply string
		want  float64
	}{
		{"json", `{"score": 7}`, 0.7},
		{"json fraction", `{"score": 0.85, "reason": "mostly right"}`, 0.85},
		{"json in fence", "Here is my verdict:\n```json\n{\"score\": 9, \"explanation\": \"concise\"}\n```", 0.9},
		{"json after prose", `The summary is faithful. {"rating": 8}`, 0.8},
		{"json string ratio", `{"score": "6/10"}`, 0.6},
		{"json upper key", `{"Score": 100}`, 1},
		{"json conflicting keys", `{"score": 8, "rating": 3}`, fail},
		{"json bad value", `{"score": "excellent"}`, fail},
		{"json negative", `{"score": -2}`, fail},
		{"json over range", `{"score": 1000}`, fail},
		{"labelled ratio", "The summary captures the main point but omits the date.\nScore: 8/10", 0.8},
		{"labelled fraction", "Score: 0.8", 0.8},
		{"labelled markdown", "**Score:** 7/10\n\nThe answer is accurate but verbose.", 0.7},
		{"rating bare", "Rating: 7", 0.7},
		{"final score", "Accuracy: 3/5, fluency 5/5.\nFinal score: 8 out of 10", 0.8},
		{"score of", "I would give this translation a score of 9.", 0.9},
		{"percent", "Overall: 85%", 0.85},
		{"labelled range", "Score (1-10): 1", 0.1},
		{"labelled range 0-100", "Score (0 to 100): 64", 0.64},
		{"out of", "I'd rate it 7 out of 10.", 0.7},
		{"out of five", "Solid work, 4 out of 5", 0.8},
		{"bare fraction", "0.85", 0.85},
		{"bare on last line", "The answer is correct and complete.\n\n9", 0.9},
		{"bare last line with period", "Correct, if terse.\n10.", 1},
		{"bare one", "1", 1},
		{"same score twice", "Score: 7/10. Justification: clear. Final score: 7/10", 0.7},
		{"conflicting labels", "Score: 7/10\nOn reflection, Score: 3/10", fail},
		{"conflicting ratios", "Accuracy 3/10, fluency 9/10.", fail},
		{"no score", "The answer is good but could be more concise.", fail},
		{"refusal", "I'm sorry, I can't evaluate this.", fail},
		{"empty", "", fail},
		{"labelled out of range", "Score: 11/10", fail},
		{"labelled huge", "Score: 250", fail},
		{"zero denominator", "Score: 3/0", fail},
		{"date is no ratio", "Reviewed on 2024/10/03; looks fine.", fail},
		{"version is no ratio", "Works on 1.2/1.3 and later.", fail},
		{"score 7th", "Score: 7th place", fail},
		{"zero", "Score: 0/10 - the answer is unrelated.", 0},
		{"labelled wins over ratio", "It gets 3 out of 4 facts right.\nScore: 6/10", 0.6},
		{"last line wins over ratio", "It gets 3 out of 4 facts right.\n6/10", 0.6},
		{"labelled negative", "Score: -3", fail},
		{"grade decimal", "Grade: 8.5 / 10", 0.85},
		{"is", "My rating is 6", 0.6},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := ParseScore(c.reply)
			if c.want == fail {
				if ok {
					t.Fatalf("ParseScore(%q) = %v, want a failure", c.reply, got)
				}
				return
			}
			if !ok || math.Abs(got-c.want) > 1e-9 {
				t.Fatalf("ParseScore(%q) = %v, %v; want %v", c.reply, got, ok, c.want)
			}
		})
	}
}

func TestParseScoreScale(t *testing.T) {
	for _, c := range []struct {
		reply string
		scale float64
		want  float64
		ok    bool
	}{
		{"Rating: 1", 10, 0.1, true},
		{"Rating: 1", 0, 1, true},
		{"4", 5, 0.8, true},
		{"6", 5, 0, false},
		{"Score: 8/10", 100, 0.8, true}, // an explicit denominator wins
		{`{"score": 50}`, 100, 0.5, true},
	} {
		got, err := parseScore(c.reply, c.scale)
		if (err == nil) != c.ok || c.ok && math.Abs(got-c.want) > 1e-9 {
			t.Errorf("parseScore(%q, %v) = %v, %v; want %v, %v", c.reply, c.scale, got, err, c.want, c.ok)
		}
	}
}

func TestParseScoreBoundsWork(t *testing.T) {
	if _, ok := ParseScore(strings.Repeat("a", maxScoreReply+1)); ok {
		t.Fatal("an oversized reply gave a score")
	}
	// Many candidates and braces stay fast and fail cleanly.
	if _, ok := ParseScore(strings.Repeat("{ 1/2 Score: 3 } Score: 4 ", 10000)); ok {
		t.Fatal("a reply of conflicting pieces gave a score")
	}
}

func FuzzParseScore(f *testing.F) {
	for _, s := range []string{`{"score": 7}`, "Score: 8/10", "7 out of 10", "0.85", "Rating: 7", "x\n9", "Score (1-10): 3",
		"```json\n{\"score\":\"6/10\"}\n```", "85%", "2024/10/03", "Score: 1e400", "{\"score\": 1e400}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, reply string) {
		s, ok := ParseScore(reply)
		if ok && (math.IsNaN(s) || s < 0 || s > 1) {
			t.Fatalf("ParseScore(%q) = %v", reply, s)
		}
		if !ok && s != 0 {
			t.Fatalf("ParseScore(%q) failed with %v", reply, s)
		}
		for _, scale := range []float64{1, 5, 10, 100} {
			if s, err := parseScore(reply, scale); err == nil && (math.IsNaN(s) || s < 0 || s > 1) {
				t.Fatalf("parseScore(%q, %v) = %v", reply, scale, s)
			}
		}
	})
}

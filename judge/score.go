package judge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ParseScore finds the score in a model's free-text reply and maps it to
// [0,1]. It reports false when the reply holds no score, an invalid one,
// or two that disagree: a judge failure, never a 0.
//
// It looks, in this order, and takes the first kind it finds:
//
//  1. a JSON object (the whole reply, a ```json fenced block, or the text
//     from the first "{" to the last "}") with a top-level "score",
//     "rating" or "grade" member (any case): a number, or a string read as
//     in 3;
//  2. labelled scores: "Score: 8/10", "Final score: 0.8", "Rating: 7",
//     "Overall: 4 out of 5", "score of 85%", "Score (1-10): 7", markdown
//     emphasis ignored;
//  3. a last non-empty line that is only a score: "7", "0.85", "8/10",
//     "7 out of 10", "85%";
//  4. ratios anywhere: "I'd give it 7 out of 10", "7/10".
//
// Every score of the kind found must agree ("Score: 7/10 … Score: 3/10"
// fails); one of kind 1 to 3 that is out of range fails (a ratio of kind 4
// that cannot be a score, like "2024/10", is ignored).
//
// # Scale
//
// "x/N" and "x out of N" are x/N (0 ≤ x ≤ N, N a whole number); "x%" is x/100. A bare
// number x is x on a 0..1 scale if x ≤ 1, x/10 if x ≤ 10, x/100 if x ≤ 100,
// and invalid above; so a bare "1" is 1.0. A label's own range ("Score
// (1-10): 1") or LLMConfig.Scale sets the scale of bare numbers instead.
// Templates should ask for "x/10" (or JSON) to leave no doubt.
func ParseScore(reply string) (float64, bool) {
	s, err := parseScore(reply, 0)
	return s, err == nil
}

// maxScoreReply bounds the reply ParseScore reads; maxCandidates the
// scores of one kind it weighs (more fail).
const (
	maxScoreReply = 1 << 20
	maxCandidates = 64
)

var (
	errNoScore = errors.New("no score in the reply")
	numExpr    = `(\d{1,12}(?:\.\d{1,12})?|\.\d{1,12})(?:\s*(?:/|out\s+of)\s*(\d{1,12}))?(?:\s*(%))?`
	labelled   = regexp.MustCompile(`(?i)\b(?:(?:(?:final|overall|total)\s+)?(?:score|rating|grade)|overall)\b(?:\s*\(([^)\n]{0,40})\))?\s*(?:[:=\-–]\s*|(?:is|of)\s+)?(?:is\s+|of\s+)?` + numExpr)
	whole      = regexp.MustCompile(`(?i)^` + numExpr + `$`)
	ratio      = regexp.MustCompile(`(?i)(\d{1,12}(?:\.\d{1,12})?)\s*(?:/|out\s+of)\s*(\d{1,12})`)
	rangeExpr  = regexp.MustCompile(`(\d{1,6}(?:\.\d{1,6})?)\s*(?:-|–|to)\s*(\d{1,6}(?:\.\d{1,6})?)`)
	fenced     = regexp.MustCompile("(?s)```(?:json|JSON)?\\s*(\\{.*?\\})\\s*```")
)

// parseScore is ParseScore with the scale of bare numbers (0: detected).
func parseScore(reply string, scale float64) (float64, error) {
	if len(reply) > maxScoreReply {
		return 0, fmt.Errorf("a reply of %d bytes is too long to read a score from", len(reply))
	}
	if !utf8.ValidString(reply) {
		reply = strings.ToValidUTF8(reply, "\uFFFD")
	}
	if found, s, err := jsonScore(reply, scale); found {
		return s, err
	}
	text := strings.NewReplacer("*", "", "`", "", "#", "").Replace(reply)
	var scores []float64
	labels := labelled.FindAllStringSubmatchIndex(text, maxCandidates+1)
	if len(labels) > maxCandidates {
		return 0, fmt.Errorf("more than %d labelled scores", maxCandidates)
	}
	for _, m := range labels {
		if m[1] < len(text) && isWordByte(text[m[1]]) {
			continue // "Score: 7th", "Score: 1e9": not a plain number
		}
		sc := scale
		if m[2] >= 0 {
			if r := rangeExpr.FindStringSubmatch(text[m[2]:m[3]]); r != nil {
				if hi, err := strconv.ParseFloat(r[2], 64); err == nil && hi > 0 {
					sc = hi
				}
			}
		}
		s, err := scoreOf(sub(text, m, 4), sub(text, m, 6), m[8] >= 0, sc)
		if err != nil {
			return 0, fmt.Errorf("%q: %w", text[m[0]:m[1]], err)
		}
		scores = append(scores, s)
	}
	if len(scores) > 0 {
		return agree(scores)
	}
	if line := lastLine(text); line != "" {
		if m := whole.FindStringSubmatchIndex(line); m != nil {
			return scoreOf(sub(line, m, 2), sub(line, m, 4), m[6] >= 0, scale)
		}
	}
	ratios := ratio.FindAllStringSubmatchIndex(text, maxCandidates+1)
	if len(ratios) > maxCandidates {
		return 0, fmt.Errorf("more than %d ratios", maxCandidates)
	}
	for _, m := range ratios {
		if m[0] > 0 && (isWordByte(text[m[0]-1]) || text[m[0]-1] == '.' || text[m[0]-1] == '/') ||
			m[1] < len(text) && (isWordByte(text[m[1]]) || text[m[1]] == '/' || text[m[1]] == '.' && m[1]+1 < len(text) && isDigit(text[m[1]+1])) {
			continue // part of a longer token: a date, a version, a path
		}
		if s, err := scoreOf(sub(text, m, 2), sub(text, m, 4), false, scale); err == nil {
			scores = append(scores, s)
		}
	}
	if len(scores) > 0 {
		return agree(scores)
	}
	return 0, errNoScore
}

// sub is the i-th submatch of m in s, or "".
func sub(s string, m []int, i int) string {
	if m[i] < 0 {
		return ""
	}
	return s[m[i]:m[i+1]]
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

func isWordByte(b byte) bool {
	return isDigit(b) || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b == '_'
}

// scoreOf maps a number, with its denominator or percent sign if any, to
// [0,1].
func scoreOf(num, denom string, percent bool, scale float64) (float64, error) {
	x, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", num)
	}
	var s float64
	switch {
	case denom != "":
		n, err := strconv.ParseFloat(denom, 64)
		if err != nil || n <= 0 || x > n || percent {
			return 0, fmt.Errorf("%s/%s is not a score", num, denom)
		}
		s = x / n
	case percent:
		if x > 100 {
			return 0, fmt.Errorf("%s%% is not a score", num)
		}
		s = x / 100
	default:
		return bare(x, scale)
	}
	return check(s)
}

// bare maps a number with no denominator to [0,1] on scale (0: detected).
func bare(x, scale float64) (float64, error) {
	switch {
	case scale > 0:
		if x > scale {
			return 0, fmt.Errorf("%v is above the scale's %v", x, scale)
		}
		return check(x / scale)
	case x <= 1:
		return check(x)
	case x <= 10:
		return check(x / 10)
	case x <= 100:
		return check(x / 100)
	}
	return 0, fmt.Errorf("%v is on no known scale", x)
}

func check(s float64) (float64, error) {
	if math.IsNaN(s) || s < 0 || s > 1 {
		return 0, fmt.Errorf("score %v is not in [0,1]", s)
	}
	return s, nil
}

// agree returns the score all of scores give, or fails.
func agree(scores []float64) (float64, error) {
	for _, s := range scores[1:] {
		if math.Abs(s-scores[0]) > 1e-9 {
			return 0, fmt.Errorf("conflicting scores %v and %v", scores[0], s)
		}
	}
	return scores[0], nil
}

// lastLine is the last non-empty line of text, without surrounding
// quotes, brackets, spaces and a final full stop.
func lastLine(text string) string {
	text = strings.TrimRightFunc(text, unicode.IsSpace)
	if i := strings.LastIndexByte(text, '\n'); i >= 0 {
		text = text[i+1:]
	}
	return strings.TrimRight(strings.Trim(text, " \t\r\"'()[]<>"), ".")
}

// jsonScore reads a score from a JSON object in reply; found tells
// whether one has a score member (then err says whether it is valid).
func jsonScore(reply string, scale float64) (found bool, score float64, err error) {
	var texts []string
	if t := strings.TrimSpace(reply); strings.HasPrefix(t, "{") {
		texts = append(texts, t)
	}
	if m := fenced.FindStringSubmatch(reply); m != nil {
		texts = append(texts, m[1])
	}
	if i, j := strings.IndexByte(reply, '{'), strings.LastIndexByte(reply, '}'); i >= 0 && j > i {
		texts = append(texts, reply[i:j+1])
	}
	for _, t := range texts {
		d := json.NewDecoder(strings.NewReader(t))
		d.UseNumber()
		var obj map[string]any
		if d.Decode(&obj) != nil || d.More() {
			continue
		}
		var scores []float64
		for k, v := range obj {
			switch strings.ToLower(k) {
			case "score", "rating", "grade":
			default:
				continue
			}
			s, err := jsonValueScore(v, scale)
			if err != nil {
				return true, 0, fmt.Errorf("JSON %q: %w", k, err)
			}
			scores = append(scores, s)
		}
		if len(scores) > 0 {
			s, err := agree(scores)
			return true, s, err
		}
	}
	return false, 0, nil
}

func jsonValueScore(v any, scale float64) (float64, error) {
	switch v := v.(type) {
	case json.Number:
		x, err := strconv.ParseFloat(v.String(), 64)
		if err != nil || x < 0 {
			return 0, fmt.Errorf("%s is not a score", v)
		}
		return bare(x, scale)
	case string:
		m := whole.FindStringSubmatchIndex(strings.TrimSpace(v))
		if m == nil {
			return 0, fmt.Errorf("%q is not a score", truncate(v, 40))
		}
		t := strings.TrimSpace(v)
		return scoreOf(sub(t, m, 2), sub(t, m, 4), m[6] >= 0, scale)
	}
	b, _ := json.Marshal(v)
	return 0, fmt.Errorf("%s is not a score", truncate(string(bytes.TrimSpace(b)), 40))
}

// truncate cuts s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

package subnet

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
)

// Bounds of v2's reward functions, which a miner's answer feeds: edit_ratio
// and rouge_l are quadratic, so their inputs' product is bounded (an error,
// so the reward fails loudly rather than silently scoring).
const (
	// MaxEditCells bounds edit_ratio's runes(a)×runes(b) and rouge_l's
	// terms(a)×terms(b).
	MaxEditCells = 4 << 20
	// MaxCosineLength bounds cosine's vectors.
	MaxCosineLength = 1 << 16
	// MaxJSONPathSegments bounds a json_path path.
	MaxJSONPathSegments = 64
)

// v2Functions are the functions only v2 rewards have (documented in
// docs/subnet-language.md; TestReferenceNamesEveryFunction checks).
var v2Functions = []cel.EnvOption{
	cel.Function("json_path", cel.Overload("json_path_dyn_string", []*cel.Type{cel.DynType, cel.StringType}, cel.DynType,
		cel.BinaryBinding(func(v, p ref.Val) ref.Val {
			path, ok := p.(types.String)
			if !ok {
				return types.NewErr("json_path: want a string path")
			}
			return jsonPath(v, string(path))
		}))),
	cel.Function("edit_ratio", cel.Overload("edit_ratio_string_string", []*cel.Type{cel.StringType, cel.StringType}, cel.DoubleType,
		cel.BinaryBinding(strFunc2(func(a, b string) ref.Val {
			r, err := editRatio(a, b)
			if err != nil {
				return types.NewErr("edit_ratio: %v", err)
			}
			return types.Double(r)
		})))),
	cel.Function("rouge_l", cel.Overload("rouge_l_string_string", []*cel.Type{cel.StringType, cel.StringType}, cel.DoubleType,
		cel.BinaryBinding(strFunc2(func(a, b string) ref.Val {
			r, err := rougeL(a, b)
			if err != nil {
				return types.NewErr("rouge_l: %v", err)
			}
			return types.Double(r)
		})))),
	cel.Function("word_count", cel.Overload("word_count_string", []*cel.Type{cel.StringType}, cel.IntType,
		cel.UnaryBinding(func(a ref.Val) ref.Val {
			s, ok := a.(types.String)
			if !ok {
				return types.NewErr("word_count: want a string")
			}
			return types.Int(len(strings.Fields(string(s))))
		}))),
	cel.Function("cosine", cel.Overload("cosine_list_list", []*cel.Type{cel.ListType(cel.DynType), cel.ListType(cel.DynType)}, cel.DoubleType,
		cel.BinaryBinding(func(a, b ref.Val) ref.Val {
			x, err := numbers(a)
			if err != nil {
				return types.NewErr("cosine: %v", err)
			}
			y, err := numbers(b)
			if err != nil {
				return types.NewErr("cosine: %v", err)
			}
			c, err := cosine(x, y)
			if err != nil {
				return types.NewErr("cosine: %v", err)
			}
			return types.Double(c)
		}))),
}

func strFunc2(f func(a, b string) ref.Val) func(a, b ref.Val) ref.Val {
	return func(a, b ref.Val) ref.Val {
		x, ok1 := a.(types.String)
		y, ok2 := b.(types.String)
		if !ok1 || !ok2 {
			return types.NewErr("want two strings")
		}
		return f(string(x), string(y))
	}
}

// jsonPath looks a path up in v: a JSON pointer ("/a/0/b", with ~0 and ~1
// escapes) or a dotted path ("a.0.b"; "" or "." is v itself). A missing
// member, an index out of range, or a step into a scalar gives null.
func jsonPath(v ref.Val, path string) ref.Val {
	var segs []string
	switch {
	case path == "" || path == "." || path == "/":
		if path == "/" {
			segs = []string{""}
		}
	case strings.HasPrefix(path, "/"):
		for _, s := range strings.Split(path[1:], "/") {
			segs = append(segs, strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~"))
		}
	default:
		segs = strings.Split(strings.TrimPrefix(path, "."), ".")
	}
	if len(segs) > MaxJSONPathSegments {
		return types.NewErr("json_path: %d segments, at most %d", len(segs), MaxJSONPathSegments)
	}
	cur := v
	for _, seg := range segs {
		switch c := cur.(type) {
		case traits.Mapper:
			next, found := c.Find(types.String(seg))
			if !found || types.IsError(next) {
				return types.NullValue
			}
			cur = next
		case traits.Lister:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || int64(i) >= int64(c.Size().(types.Int)) {
				return types.NullValue
			}
			cur = c.Get(types.Int(i))
		default:
			return types.NullValue
		}
	}
	return cur
}

// editRatio is 1 − Levenshtein(a, b) / max(len(a), len(b)), lengths in
// runes; two empty texts are equal (1).
func editRatio(a, b string) (float64, error) {
	ra, rb := []rune(a), []rune(b)
	if len(ra) == 0 && len(rb) == 0 {
		return 1, nil
	}
	if len(ra)*len(rb) > MaxEditCells {
		return 0, fmt.Errorf("texts of %d and %d runes: their product is over %d", len(ra), len(rb), MaxEditCells)
	}
	d := levenshtein(ra, rb)
	return 1 - float64(d)/float64(max(len(ra), len(rb))), nil
}

func levenshtein(a, b []rune) int {
	prev, cur := make([]int, len(b)+1), make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// terms splits a text into lower-case runs of letters and digits (every
// word kept, unlike similarity's stop-word-free terms).
func terms(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// rougeL is ROUGE-L's F1 of the two texts' terms: with L the length of
// their longest common subsequence, P = L/len(a), R = L/len(b), F1 =
// 2PR/(P+R). Two texts without terms score 1; one without, 0.
func rougeL(a, b string) (float64, error) {
	ta, tb := terms(a), terms(b)
	switch {
	case len(ta) == 0 && len(tb) == 0:
		return 1, nil
	case len(ta) == 0 || len(tb) == 0:
		return 0, nil
	case len(ta)*len(tb) > MaxEditCells:
		return 0, fmt.Errorf("texts of %d and %d terms: their product is over %d", len(ta), len(tb), MaxEditCells)
	}
	prev, cur := make([]int, len(tb)+1), make([]int, len(tb)+1)
	for i := 1; i <= len(ta); i++ {
		for j := 1; j <= len(tb); j++ {
			if ta[i-1] == tb[j-1] {
				cur[j] = prev[j-1] + 1
			} else {
				cur[j] = max(prev[j], cur[j-1])
			}
		}
		prev, cur = cur, prev
		clear(cur)
	}
	l := float64(prev[len(tb)])
	if l == 0 {
		return 0, nil
	}
	p, r := l/float64(len(ta)), l/float64(len(tb))
	return 2 * p * r / (p + r), nil
}

// numbers reads a CEL list of numbers (double, int or uint).
func numbers(v ref.Val) ([]float64, error) {
	l, ok := v.(traits.Lister)
	if !ok {
		return nil, errors.New("want a list of numbers")
	}
	n, _ := l.Size().(types.Int)
	if n > MaxCosineLength {
		return nil, fmt.Errorf("%d numbers, at most %d", n, MaxCosineLength)
	}
	out := make([]float64, 0, n)
	for i := types.Int(0); i < n; i++ {
		switch x := l.Get(i).(type) {
		case types.Double:
			out = append(out, float64(x))
		case types.Int:
			out = append(out, float64(x))
		case types.Uint:
			out = append(out, float64(x))
		default:
			return nil, fmt.Errorf("element %d is %s, not a number", i, l.Get(i).Type())
		}
	}
	return out, nil
}

// cosine is the cosine of the angle between x and y (same length); 0 when
// either is all zeros.
func cosine(x, y []float64) (float64, error) {
	if len(x) != len(y) {
		return 0, fmt.Errorf("vectors of %d and %d numbers", len(x), len(y))
	}
	var dot, nx, ny float64
	for i := range x {
		dot += x[i] * y[i]
		nx += x[i] * x[i]
		ny += y[i] * y[i]
	}
	if nx == 0 || ny == 0 {
		return 0, nil
	}
	c := dot / (math.Sqrt(nx) * math.Sqrt(ny))
	if math.IsNaN(c) {
		return 0, errors.New("not finite")
	}
	return max(-1, min(1, c)), nil
}

// answerJSON parses an answer as JSON for the reward's answer_json: nil
// (null) unless it is one valid JSON value.
func answerJSON(answer []byte) any {
	if len(answer) == 0 || !utf8.Valid(answer) {
		return nil
	}
	v, err := decodeJSONValue(answer)
	if err != nil {
		return nil
	}
	return v
}

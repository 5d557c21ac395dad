package subnet

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/cel-go/cel"
)

func reference(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../docs/subnet-language.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// specFields lists every field path a spec may hold, by its YAML names
// (tasks.limits.timeout, synapses[].prompt), each struct type walked once:
// where it appears again (mechanisms[].tasks, judge.limits) only the field
// naming it is listed.
func specFields(typ reflect.Type, prefix string, seen map[reflect.Type]bool, out *[]string) {
	for i := range typ.NumField() {
		f := typ.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || tag == "" || tag == "-" {
			continue
		}
		path := prefix + tag
		*out = append(*out, path)
		ft := f.Type
		suffix := "."
		for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
			if ft.Kind() == reflect.Slice {
				suffix = "[]."
			}
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft.PkgPath() == typ.PkgPath() && !seen[ft] {
			seen[ft] = true
			specFields(ft, path+suffix, seen, out)
		}
	}
}

// The reference names every field the code accepts: a field added to Spec
// (or to a type in it) without a line in docs/subnet-language.md fails here.
func TestReferenceNamesEveryField(t *testing.T) {
	doc := reference(t)
	var fields []string
	specFields(reflect.TypeFor[Spec](), "", map[reflect.Type]bool{reflect.TypeFor[Spec](): true}, &fields)
	for _, want := range []string{"version", "synapses[].request", "tasks.limits.cpu_seconds", "judge.api_key_env", "mechanisms[].share", "files"} {
		if !slices.Contains(fields, want) {
			t.Fatalf("the walk missed %s: %v", want, fields)
		}
	}
	for _, f := range fields {
		if !strings.Contains(doc, "`"+f+"`") {
			t.Errorf("docs/subnet-language.md does not name `%s`", f)
		}
	}
}

// The reference names every function and variable of both reward
// environments (beyond CEL's standard ones).
func TestReferenceNamesEveryRewardFunction(t *testing.T) {
	doc := reference(t)
	std, err := cel.NewEnv()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, env := range []*cel.Env{rewardEnv, rewardEnvV2} {
		for name := range env.Functions() {
			if std.HasFunction(name) {
				continue
			}
			n++
			if !strings.Contains(doc, "`"+name+"(") {
				t.Errorf("docs/subnet-language.md does not name the function %s", name)
			}
		}
		for _, v := range env.Variables() {
			if !strings.Contains(doc, "| `"+v.Name()+"` |") {
				t.Errorf("docs/subnet-language.md does not name the variable %s", v.Name())
			}
		}
	}
	if n < 11 {
		t.Fatalf("found %d functions of ours; want at least the 6 of v1 and 5 of v2", n)
	}
}

// Every reward in the reference's examples compiles (v2 has v1's too).
func TestReferenceExamplesCompile(t *testing.T) {
	n := 0
	for _, line := range strings.Split(reference(t), "\n") {
		expr, ok := strings.CutPrefix(line, "reward: '")
		if !ok {
			continue
		}
		n++
		if _, err := NewRewardV2(strings.TrimSuffix(expr, "'")); err != nil {
			t.Errorf("%s: %v", line, err)
		}
	}
	if n < 5 {
		t.Fatalf("%d examples", n)
	}
}

package subnet

import (
	"embed"
	"fmt"
	"sort"
	"strings"
)

//go:embed specs/*.yaml
var builtin embed.FS

// Builtin returns a built-in subnet's spec by name (see BuiltinNames).
func Builtin(name string) (*Spec, error) {
	text, err := builtin.ReadFile("specs/" + name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("subnet: no built-in spec %q (have: %s)", name, strings.Join(BuiltinNames(), ", "))
	}
	return Parse(text)
}

// BuiltinNames lists the built-in specs.
func BuiltinNames() []string {
	entries, _ := builtin.ReadDir("specs")
	var out []string
	for _, e := range entries {
		out = append(out, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	sort.Strings(out)
	return out
}

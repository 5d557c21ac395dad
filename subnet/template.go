package subnet

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Prompt templates (a synapse's prompt, an llm judge's prompt) are text
// with variables written {{name}} or {{ name }}: a name is letters, digits
// and underscores, optionally dotted once (task.text). Any other "{{" is
// an error, so a typo is caught when the spec is checked, not when a
// model reads it.

// MaxTemplateSize bounds a prompt template.
const MaxTemplateSize = 64 << 10

var templateVar = regexp.MustCompile(`^\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)?)\s*\}\}`)

// TemplateVariables lists the variables a template names, in order of
// first use; an unclosed or malformed {{…}} is an error naming its offset.
func TemplateVariables(tmpl string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	err := scanTemplate(tmpl, func(name string) error {
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
		return nil
	}, nil)
	return out, err
}

// scanTemplate calls onVar for each variable and onText (if set) for the
// text between them.
func scanTemplate(tmpl string, onVar func(name string) error, onText func(string)) error {
	if len(tmpl) > MaxTemplateSize {
		return fmt.Errorf("template of %d bytes, at most %d", len(tmpl), MaxTemplateSize)
	}
	rest, off := tmpl, 0
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			if onText != nil {
				onText(rest)
			}
			return nil
		}
		if onText != nil {
			onText(rest[:i])
		}
		m := templateVar.FindStringSubmatch(rest[i:])
		if m == nil {
			end := min(len(rest), i+24)
			return fmt.Errorf("byte %d: %q is not a variable: write {{name}} or {{task.field}}", off+i, rest[i:end])
		}
		if err := onVar(m[1]); err != nil {
			return err
		}
		rest, off = rest[i+len(m[0]):], off+i+len(m[0])
	}
}

// renderTemplate replaces each variable by value(name); value's false
// means an unknown variable, an error.
func renderTemplate(tmpl string, value func(name string) (string, bool)) (string, error) {
	var b strings.Builder
	err := scanTemplate(tmpl, func(name string) error {
		v, ok := value(name)
		if !ok {
			return fmt.Errorf("unknown template variable {{%s}}", name)
		}
		b.WriteString(v)
		return nil
	}, func(text string) { b.WriteString(text) })
	if err != nil {
		return "", err
	}
	return b.String(), nil
}

// CheckJudgeTemplate checks an llm judge's prompt template: its variables
// are expected, answer and task.<p> for p a top-level property of the
// task synapse's request.
func CheckJudgeTemplate(tmpl string, syn *Synapse) error {
	vars, err := TemplateVariables(tmpl)
	if err != nil {
		return err
	}
	props := syn.RequestProperties()
	for _, v := range vars {
		switch {
		case v == "expected" || v == "answer":
		case strings.HasPrefix(v, "task."):
			if p := strings.TrimPrefix(v, "task."); !slices.Contains(props, p) {
				return fmt.Errorf("{{%s}}: %q is not a top-level property of %s's request (have: %s)", v, p, syn.Name, strings.Join(props, ", "))
			}
		default:
			return fmt.Errorf("{{%s}} is not a judge template variable (want task.<field>, expected, answer)", v)
		}
	}
	return nil
}

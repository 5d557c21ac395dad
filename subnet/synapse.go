package subnet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/valyala/fastjson"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"gopkg.in/yaml.v3"

	"github.com/cybertensor/cybertensor/protocol"
)

// AnswerText is a synapse's answer kind for free UTF-8 text.
const AnswerText = "text"

// Synapse size limits: the defaults of a custom synapse and the most a
// spec may set.
const (
	DefaultMaxRequestBytes = 64 << 10
	DefaultMaxAnswerBytes  = 64 << 10
	// MaxSynapseRequestBytes leaves room, within the query protocol's
	// request of at most protocol.MaxRequestSize (1 MiB), for the
	// request's other fields: a larger body could never reach a miner.
	MaxSynapseRequestBytes = protocol.MaxRequestSize - 4<<10
	MaxSynapseAnswerBytes  = 16 << 20
	// MaxSynapseName bounds a synapse's name.
	MaxSynapseName = 64
)

// Synapse is one synapse type a subnet's miners serve: a built-in (by
// name, see BuiltinSynapses) or a custom one a v2 spec declares, whose
// request and answer are checked against JSON Schemas (draft 2020-12).
type Synapse struct {
	// Name, e.g. "text.generate" or "summarize.v1": lower-case
	// [a-z0-9_.-], 1 to 64 bytes.
	Name string `yaml:"name"`
	// Request is the JSON Schema every request body must satisfy (nil for
	// built-ins, whose bodies their own decoders check).
	Request map[string]any `yaml:"request"`
	// Answer is "text" (free UTF-8 text) or the JSON Schema of the answer
	// (a map); nil for built-ins.
	Answer any `yaml:"answer"`
	// Stream says miners may stream the answer in chunks (text answers
	// only).
	Stream bool `yaml:"stream"`
	// MaxRequestBytes and MaxAnswerBytes bound the bodies (defaults
	// DefaultMaxRequestBytes and DefaultMaxAnswerBytes; at most
	// MaxSynapseRequestBytes and MaxSynapseAnswerBytes).
	MaxRequestBytes int `yaml:"max_request_bytes"`
	MaxAnswerBytes  int `yaml:"max_answer_bytes"`
	// Prompt is what an LLM-backed miner sends as the user message, with
	// {{field}} replaced by the request's top-level fields (RenderPrompt).
	Prompt string `yaml:"prompt"`

	// custom: written as an object in the spec (v2 only).
	custom bool
	// line of the entry in the spec (0 if not parsed from one).
	line int
	// requestSchema and answerSchema are compiled from Request and Answer.
	requestSchema, answerSchema *jsonschema.Schema
	// check, for built-ins, checks a request body with the synapse's own
	// decoder.
	check func(body []byte) error
	// builtinAnswer, for built-ins, is how the answer is written: "text"
	// or "json".
	builtinAnswer string
}

// BuiltinSynapses are the synapses cybertensor defines (bodies in
// protocol/SPEC.md §2.6), described as a spec describes a custom one.
var BuiltinSynapses = []Synapse{
	{Name: "text.generate", Stream: true, MaxRequestBytes: 1 << 20, MaxAnswerBytes: 64 << 20, builtinAnswer: AnswerText,
		Prompt: "{{prompt}}", check: checkTextGenerate},
	{Name: SynapseChat, Stream: true, MaxRequestBytes: MaxChatBody, MaxAnswerBytes: 64 << 20, builtinAnswer: AnswerText,
		check: func(b []byte) error { _, err := DecodeChatRequest(b); return err }},
	{Name: SynapseEmbed, MaxRequestBytes: MaxChatBody, MaxAnswerBytes: MaxEmbedAnswer, builtinAnswer: "json",
		check: func(b []byte) error { _, err := DecodeEmbedRequest(b); return err }},
	{Name: "knowledge.get", MaxRequestBytes: 1 << 20, MaxAnswerBytes: 64 << 20, builtinAnswer: "json"},
	{Name: "storage.prove", MaxRequestBytes: maxStorageBody, MaxAnswerBytes: maxStorageBody, builtinAnswer: "json",
		check: func(b []byte) error { _, err := DecodeStorageChallenge(b); return err }},
	{Name: "compute.run", MaxRequestBytes: maxComputeBody, MaxAnswerBytes: maxComputeBody, builtinAnswer: "json",
		check: func(b []byte) error { _, err := DecodeComputeJob(b); return err }},
}

// MaxTextPrompt bounds a text.generate prompt (protocol/SPEC.md §2.6).
const MaxTextPrompt = 256 << 10

func checkTextGenerate(b []byte) error {
	var in struct {
		Prompt string `json:"prompt"`
	}
	if err := json.Unmarshal(b, &in); err != nil || in.Prompt == "" || len(in.Prompt) > MaxTextPrompt {
		return fmt.Errorf(`%w: want {"prompt": "..."} with a prompt of 1 to %d bytes`, ErrBadBody, MaxTextPrompt)
	}
	return nil
}

// BuiltinSynapse returns the built-in synapse of that name, or nil.
func BuiltinSynapse(name string) *Synapse {
	for i := range BuiltinSynapses {
		if BuiltinSynapses[i].Name == name {
			s := BuiltinSynapses[i]
			return &s
		}
	}
	return nil
}

// Synapses names the built-in synapse types.
var Synapses = builtinSynapseNames()

func builtinSynapseNames() []string {
	out := make([]string, len(BuiltinSynapses))
	for i, s := range BuiltinSynapses {
		out[i] = s.Name
	}
	return out
}

// Builtin says whether s is one of BuiltinSynapses.
func (s *Synapse) Builtin() bool { return !s.custom && slices.Contains(Synapses, s.Name) }

// AnswerIsText says whether the answer is free UTF-8 text.
func (s *Synapse) AnswerIsText() bool {
	if s.Builtin() {
		return BuiltinSynapse(s.Name).builtinAnswer == AnswerText
	}
	a, ok := s.Answer.(string)
	return ok && a == AnswerText
}

var synapseKeys = []string{"name", "request", "answer", "stream", "max_request_bytes", "max_answer_bytes", "prompt"}

// UnmarshalYAML reads a synapse entry: a string names a built-in; an
// object declares a custom synapse (checked by Parse).
func (s *Synapse) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		var name string
		if err := n.Decode(&name); err != nil {
			return err
		}
		*s = Synapse{Name: name, line: n.Line}
		return nil
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if !slices.Contains(synapseKeys, k.Value) {
				return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: field %s not found in a synapse (known: %s)", k.Line, k.Value, strings.Join(synapseKeys, ", "))}}
			}
		}
		type plain Synapse // without UnmarshalYAML
		var p plain
		if err := n.Decode(&p); err != nil {
			return err
		}
		*s = Synapse(p)
		s.custom, s.line = true, n.Line
		return nil
	}
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: a synapse is a built-in's name or an object with a name", n.Line)}}
}

var synapseName = regexp.MustCompile(`^[a-z0-9_.-]{1,64}$`)

// schemaCompiler compiles a spec's schemas: draft 2020-12 unless the schema
// names another; it loads nothing (a $ref to a file or URL fails).
func compileSchema(url string, doc map[string]any) (*jsonschema.Schema, error) {
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("not JSON: %v", err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(noLoader{})
	if err := c.AddResource(url, v); err != nil {
		return nil, err
	}
	return c.Compile(url)
}

// noLoader refuses every URL a schema refers to: specs are self-contained.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("%s: a spec's schema may not refer to files or URLs", url)
}

// compile checks a custom synapse and compiles its schemas; bad reports the
// field (relative to the entry) and why.
func (s *Synapse) compile(bad func(field, format string, args ...any) error) error {
	switch {
	case !synapseName.MatchString(s.Name):
		return bad("name", "%q: want 1 to %d bytes of lower-case [a-z0-9_.-]", s.Name, MaxSynapseName)
	case slices.Contains(Synapses, s.Name):
		return bad("name", "%q is a built-in synapse: list it by name, not as an object", s.Name)
	case s.Request == nil:
		return bad("request", "a custom synapse needs a request schema (a JSON Schema object)")
	case s.MaxRequestBytes < 0 || s.MaxRequestBytes > MaxSynapseRequestBytes:
		return bad("max_request_bytes", "%d: want 1 to %d (default %d)", s.MaxRequestBytes, MaxSynapseRequestBytes, DefaultMaxRequestBytes)
	case s.MaxAnswerBytes < 0 || s.MaxAnswerBytes > MaxSynapseAnswerBytes:
		return bad("max_answer_bytes", "%d: want 1 to %d (default %d)", s.MaxAnswerBytes, MaxSynapseAnswerBytes, DefaultMaxAnswerBytes)
	}
	if s.MaxRequestBytes == 0 {
		s.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if s.MaxAnswerBytes == 0 {
		s.MaxAnswerBytes = DefaultMaxAnswerBytes
	}
	var err error
	if s.requestSchema, err = compileSchema("urn:cybertensor:synapse:"+s.Name+":request", s.Request); err != nil {
		return bad("request", "schema does not compile: %s", oneLine(err))
	}
	switch a := s.Answer.(type) {
	case string:
		if a != AnswerText {
			return bad("answer", "%q: want %q or a JSON Schema object", a, AnswerText)
		}
	case map[string]any:
		if s.answerSchema, err = compileSchema("urn:cybertensor:synapse:"+s.Name+":answer", a); err != nil {
			return bad("answer", "schema does not compile: %s", oneLine(err))
		}
		if s.Stream {
			return bad("stream", "only text answers may be streamed")
		}
	case nil:
		return bad("answer", "a custom synapse needs an answer: %q or a JSON Schema object", AnswerText)
	default:
		return bad("answer", "want %q or a JSON Schema object", AnswerText)
	}
	if s.Prompt != "" {
		props := s.RequestProperties()
		vars, err := TemplateVariables(s.Prompt)
		if err != nil {
			return bad("prompt", "%v", err)
		}
		for _, v := range vars {
			if !slices.Contains(props, v) {
				return bad("prompt", "{{%s}} is not a top-level property of the request schema (have: %s)", v, strings.Join(props, ", "))
			}
		}
	}
	return nil
}

func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

// RequestProperties lists the top-level properties the request schema
// names (for a built-in, text.generate's prompt), sorted.
func (s *Synapse) RequestProperties() []string {
	if s.Builtin() {
		switch s.Name {
		case "text.generate":
			return []string{"prompt"}
		case SynapseChat:
			return []string{"max_tokens", "messages", "seed", "stop", "temperature", "top_p"}
		case SynapseEmbed:
			return []string{"dimensions", "input"}
		}
		return nil
	}
	props, _ := s.Request["properties"].(map[string]any)
	out := make([]string, 0, len(props))
	for k := range props {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// SchemaError is a body that fails its synapse's schema or limits: Path is
// the JSON pointer of the failing value ("" for the whole body).
type SchemaError struct {
	Path   string
	Reason string
}

func (e *SchemaError) Error() string {
	if e.Path == "" {
		return "body: " + e.Reason
	}
	return e.Path + ": " + e.Reason
}

var errPrinter = message.NewPrinter(language.English)

// schemaError turns a validation error into a SchemaError at its deepest
// failing location.
func schemaError(err error) error {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return &SchemaError{Reason: err.Error()}
	}
	for len(ve.Causes) > 0 {
		ve = ve.Causes[0]
	}
	path := ""
	for _, tok := range ve.InstanceLocation {
		path += "/" + strings.ReplaceAll(strings.ReplaceAll(tok, "~", "~0"), "/", "~1")
	}
	return &SchemaError{Path: path, Reason: ve.ErrorKind.LocalizedString(errPrinter)}
}

// jsonParsers parse bodies for schema validation: fastjson is several
// times faster than encoding/json, which keeps validation of a 4 KiB
// request within the 20 µs.
var jsonParsers fastjson.ParserPool

// parseBody parses one JSON value (UTF-8, strictly valid, nested at most
// fastjson.MaxDepth deep) into the form the schema validator takes:
// objects map[string]any (the last of a repeated member wins, as
// encoding/json's), arrays []any, numbers json.Number (exact).
func parseBody(body []byte) (any, error) {
	if !utf8.Valid(body) {
		return nil, &SchemaError{Reason: "not JSON: not UTF-8"}
	}
	if err := fastjson.ValidateBytes(body); err != nil {
		return nil, &SchemaError{Reason: "not JSON: " + oneLine(err)}
	}
	p := jsonParsers.Get()
	defer jsonParsers.Put(p)
	v, err := p.ParseBytes(body)
	if err != nil {
		return nil, &SchemaError{Reason: "not JSON: " + oneLine(err)}
	}
	return fastValue(v), nil
}

// fastValue copies a parsed value out of the parser's memory.
func fastValue(v *fastjson.Value) any {
	switch v.Type() {
	case fastjson.TypeObject:
		o, _ := v.Object()
		m := make(map[string]any, o.Len())
		o.Visit(func(k []byte, e *fastjson.Value) { m[string(k)] = fastValue(e) })
		return m
	case fastjson.TypeArray:
		items, _ := v.Array()
		out := make([]any, len(items))
		for i, e := range items {
			out[i] = fastValue(e)
		}
		return out
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		return string(b)
	case fastjson.TypeNumber:
		return json.Number(v.MarshalTo(nil))
	case fastjson.TypeTrue:
		return true
	case fastjson.TypeFalse:
		return false
	}
	return nil
}

// ValidateRequest checks a request body: its size, then (custom) its
// schema or (built-in) the synapse's own decoder. A failure is a
// *SchemaError naming the failing path.
func (s *Synapse) ValidateRequest(body []byte) error {
	if max := s.maxRequest(); len(body) > max {
		return &SchemaError{Reason: fmt.Sprintf("%d bytes, at most %d", len(body), max)}
	}
	if s.Builtin() {
		if c := BuiltinSynapse(s.Name).check; c != nil {
			if err := c(body); err != nil {
				return &SchemaError{Reason: strings.TrimPrefix(err.Error(), ErrBadBody.Error()+": ")}
			}
		}
		return nil
	}
	if s.requestSchema == nil {
		return &SchemaError{Reason: "synapse " + s.Name + " was not compiled (parse its spec)"}
	}
	v, err := parseBody(body)
	if err != nil {
		return err
	}
	if err := s.requestSchema.Validate(v); err != nil {
		return schemaError(err)
	}
	return nil
}

// ValidateAnswer checks an answer: its size, then UTF-8 for text answers
// or JSON valid for the answer schema. Built-in answers are checked by
// their tasks (Task.Check); here only their size and, for text, UTF-8.
func (s *Synapse) ValidateAnswer(body []byte) error {
	if max := s.maxAnswer(); len(body) > max {
		return &SchemaError{Reason: fmt.Sprintf("%d bytes, at most %d", len(body), max)}
	}
	if s.AnswerIsText() {
		if !utf8.Valid(body) {
			return &SchemaError{Reason: "not UTF-8 text"}
		}
		return nil
	}
	if s.Builtin() {
		return nil
	}
	if s.answerSchema == nil {
		return &SchemaError{Reason: "synapse " + s.Name + " was not compiled (parse its spec)"}
	}
	v, err := parseBody(body)
	if err != nil {
		return err
	}
	if err := s.answerSchema.Validate(v); err != nil {
		return schemaError(err)
	}
	return nil
}

func (s *Synapse) maxRequest() int {
	if s.Builtin() {
		return BuiltinSynapse(s.Name).MaxRequestBytes
	}
	if s.MaxRequestBytes > 0 {
		return s.MaxRequestBytes
	}
	return DefaultMaxRequestBytes
}

func (s *Synapse) maxAnswer() int {
	if s.Builtin() {
		return BuiltinSynapse(s.Name).MaxAnswerBytes
	}
	if s.MaxAnswerBytes > 0 {
		return s.MaxAnswerBytes
	}
	return DefaultMaxAnswerBytes
}

// RenderPrompt fills the synapse's prompt template from a request body:
// {{field}} becomes the top-level field's value — a string's text, any
// other value as compact JSON, "" when absent. A synapse without a prompt
// renders "" (the miner decides what to send).
func (s *Synapse) RenderPrompt(request []byte) (string, error) {
	tmpl := s.Prompt
	if s.Builtin() {
		tmpl = BuiltinSynapse(s.Name).Prompt
	}
	if tmpl == "" {
		return "", nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(request, &fields); err != nil {
		return "", &SchemaError{Reason: "not a JSON object: " + err.Error()}
	}
	return renderTemplate(tmpl, func(name string) (string, bool) {
		raw, ok := fields[name]
		if !ok {
			return "", true
		}
		return jsonText(raw), true
	})
}

// jsonText is a JSON value as text: a string's own text, else the compact
// JSON.
func jsonText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) == nil {
		return buf.String()
	}
	return string(raw)
}

// MarshalYAML writes a built-in by its name and a custom synapse as its
// object.
func (s Synapse) MarshalYAML() (any, error) {
	if !s.custom {
		return s.Name, nil
	}
	type plain Synapse
	return plain(s), nil
}

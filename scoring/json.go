package scoring

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
)

// This file reads and writes the JSON contract of shared/spec/epoch.md
// (§2 input, §3 output). Errors name the offending field, e.g.
// "neurons[3].uid: uids must be dense 0..n-1 in order".

// parseUint reads a JSON integer literal: digits only, no sign, fraction
// or exponent, at most max.
func parseUint(field string, raw json.RawMessage, max uint64) (uint64, error) {
	if raw == nil {
		return 0, invalid(field, "missing")
	}
	s := string(bytes.TrimSpace(raw))
	if s == "" || s == "null" {
		return 0, invalid(field, "missing")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			switch {
			case s[0] == '-':
				return 0, invalid(field, "%s is negative", s)
			case s[0] == '"' || s[0] == '{' || s[0] == '[' || s == "true" || s == "false":
				return 0, invalid(field, "want an integer, got %s", truncate(s))
			default:
				return 0, invalid(field, "%s is not an integer", truncate(s))
			}
		}
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v > max {
		return 0, invalid(field, "%s is out of range 0..%d", truncate(s), max)
	}
	return v, nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// ParseInput reads the spec's input JSON and validates it.
func ParseInput(data []byte) (*Input, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil || top == nil {
		if err == nil {
			err = fmt.Errorf("null")
		}
		return nil, fmt.Errorf("%w: not a JSON object: %v", ErrInvalidInput, err)
	}
	in := &Input{}
	var err error
	if in.Block, err = parseUint("block", top["block"], 1<<64-1); err != nil {
		return nil, err
	}
	if in.Emission, err = parseUint("emission", top["emission"], maxTotal); err != nil {
		return nil, err
	}
	var params map[string]json.RawMessage
	if raw, ok := top["params"]; !ok {
		return nil, invalid("params", "missing")
	} else if err := json.Unmarshal(raw, &params); err != nil || params == nil {
		return nil, invalid("params", "want an object")
	}
	p := &in.Params
	for _, f := range []struct {
		name string
		dst  *uint64
		max  uint64
	}{
		{"kappa", &p.Kappa, 65535},
		{"bonds_moving_average", &p.BondsMovingAverage, 1_000_000},
		{"activity_cutoff", &p.ActivityCutoff, 1<<64 - 1},
		{"max_allowed_validators", &p.MaxAllowedValidators, 1<<64 - 1},
	} {
		if *f.dst, err = parseUint("params."+f.name, params[f.name], f.max); err != nil {
			return nil, err
		}
	}
	p.BondsPenalty = 65535
	if raw, ok := params["bonds_penalty"]; ok {
		if p.BondsPenalty, err = parseUint("params.bonds_penalty", raw, 65535); err != nil {
			return nil, err
		}
	}
	var neurons []json.RawMessage
	if raw, ok := top["neurons"]; !ok {
		return nil, invalid("neurons", "missing")
	} else if err := json.Unmarshal(raw, &neurons); err != nil || neurons == nil {
		return nil, invalid("neurons", "want an array")
	}
	if len(neurons) > MaxNeurons {
		return nil, invalid("neurons", "%d neurons, at most %d", len(neurons), MaxNeurons)
	}
	in.Neurons = make([]Neuron, len(neurons))
	var total uint64
	for i, raw := range neurons {
		field := fmt.Sprintf("neurons[%d]", i)
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
			return nil, invalid(field, "want an object")
		}
		uid, err := parseUint(field+".uid", obj["uid"], 1<<64-1)
		if err != nil {
			return nil, err
		}
		if uid != uint64(i) {
			return nil, invalid(field+".uid", "uids must be dense 0..n-1 in order (got %d at index %d)", uid, i)
		}
		x := &in.Neurons[i]
		if x.Stake, err = parseUint(field+".stake", obj["stake"], maxTotal); err != nil {
			return nil, err
		}
		if x.Stake > maxTotal-total {
			return nil, invalid(field+".stake", "the sum of stakes exceeds 2^63-1")
		}
		total += x.Stake
		if x.LastUpdate, err = parseUint(field+".last_update", obj["last_update"], 1<<64-1); err != nil {
			return nil, err
		}
		if x.RegisteredAt, err = parseUint(field+".registered_at", obj["registered_at"], 1<<64-1); err != nil {
			return nil, err
		}
		rawPermit, ok := obj["validator_permit"]
		if !ok {
			return nil, invalid(field+".validator_permit", "missing")
		}
		if err := json.Unmarshal(rawPermit, &x.ValidatorPermit); err != nil || string(bytes.TrimSpace(rawPermit)) == "null" {
			return nil, invalid(field+".validator_permit", "want true or false")
		}
	}
	if in.Weights, err = parseMatrix("weights", top["weights"], len(neurons)); err != nil {
		return nil, err
	}
	if in.Bonds, err = parseMatrix("bonds", top["bonds"], len(neurons)); err != nil {
		return nil, err
	}
	return in, in.Validate()
}

// parseUID reads a matrix key: a decimal uid without sign or leading zeros.
func parseUID(field, key string, n int) (uint16, error) {
	if key == "" || (len(key) > 1 && key[0] == '0') {
		return 0, invalid(field, "key %q is not a uid", key)
	}
	for _, c := range key {
		if c < '0' || c > '9' {
			return 0, invalid(field, "key %q is not a uid", key)
		}
	}
	v, err := strconv.ParseUint(key, 10, 64)
	if err != nil || v >= uint64(n) {
		return 0, invalid(field, "uid %s out of range 0..%d", truncate(key), n-1)
	}
	return uint16(v), nil
}

func parseMatrix(name string, raw json.RawMessage, n int) ([][]Entry, error) {
	rows := make([][]Entry, n)
	if raw == nil || string(bytes.TrimSpace(raw)) == "null" {
		return rows, nil
	}
	var m map[string]map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, invalid(name, "want an object of objects of integers")
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, ik := range keys {
		i, err := parseUID(fmt.Sprintf("%s[%q]", name, ik), ik, n)
		if err != nil {
			return nil, err
		}
		cols := make([]string, 0, len(m[ik]))
		for k := range m[ik] {
			cols = append(cols, k)
		}
		sort.Strings(cols)
		for _, jk := range cols {
			field := fmt.Sprintf("%s[%q][%q]", name, ik, jk)
			j, err := parseUID(field, jk, n)
			if err != nil {
				return nil, err
			}
			v, err := parseUint(field, m[ik][jk], 65535)
			if err != nil {
				return nil, err
			}
			if v != 0 {
				rows[i] = append(rows[i], Entry{UID: j, Value: uint16(v)})
			}
		}
		sort.Slice(rows[i], func(p, q int) bool { return rows[i][p].UID < rows[i][q].UID })
	}
	return rows, nil
}

// MarshalJSON writes the spec's output JSON (§3): arrays indexed by uid,
// bonds as a sparse object with empty rows and zero entries omitted. The
// same output always gives the same bytes.
func (o *Output) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	bools := func(name string, v []bool) {
		fmt.Fprintf(&b, "%q:[", name)
		for i, x := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatBool(x))
		}
		b.WriteString("],")
	}
	reals := func(name string, v []Fixed) {
		fmt.Fprintf(&b, "%q:[", name)
		for i, x := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatFloat(x.Float64(), 'g', -1, 64))
		}
		b.WriteString("],")
	}
	ints := func(name string, v []uint64) {
		fmt.Fprintf(&b, "%q:[", name)
		for i, x := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatUint(x, 10))
		}
		b.WriteString("],")
	}
	bools("active", o.Active)
	bools("validator_permit", o.ValidatorPermit)
	reals("ranks", o.Ranks)
	reals("trust", o.Trust)
	reals("consensus", o.Consensus)
	reals("incentive", o.Incentive)
	reals("dividends", o.Dividends)
	reals("validator_trust", o.ValidatorTrust)
	ints("emission", o.Emission)
	ints("server_emission", o.ServerEmission)
	ints("validator_emission", o.ValidatorEmission)
	b.WriteString(`"bonds":{`)
	first := true
	for i, row := range o.Bonds {
		if len(row) == 0 {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		fmt.Fprintf(&b, `"%d":{`, i)
		for q, e := range row {
			if q > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"%d":%d`, e.UID, e.Value)
		}
		b.WriteByte('}')
	}
	b.WriteString("}}")
	return b.Bytes(), nil
}

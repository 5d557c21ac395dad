package neuron

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/scoring"
	"github.com/cybertensor/cybertensor/subnet"
)

// A state file keeps each mechanism's scores (version 2) and a version 1
// file loads as mechanism main; pipelines take the state of the mechanism
// of their name, a pending commit only under the same id. Files that
// contradict themselves are refused.
func TestValidatorStateMechanisms(t *testing.T) {
	hot := testKey(t, "state v2", 0)
	addr := hot.PublicKey().Address()
	pending := func(mech uint8) *pendingCommit {
		h := chain.CommitHashMechanism(addr, 1, mech, []uint16{1}, []uint16{9}, []byte("salt"), 0)
		return &pendingCommit{UIDs: []uint16{1}, Values: []uint16{9}, Salt: []byte("salt"), Hash: h[:], Block: 7}
	}
	entries := func(v float64) []scoring.ScoreEntry { return []scoring.ScoreEntry{{UID: 1, Holder: "h", Value: v}} }
	v2 := validatorState{Version: 2, Netuid: 1, Hotkey: addr.String(), Mechanisms: []mechanismState{
		{Name: "quality", ID: 0, Scores: entries(0.25), LastSet: 5},
		{Name: "speed", ID: 1, Scores: entries(0.75), Pending: pending(1)},
	}}
	data, _ := json.Marshal(v2)
	s, err := decodeValidatorState(data, 1, addr)
	if err != nil {
		t.Fatal(err)
	}
	mk := func(name string, id uint8) *pipeline {
		sc, _ := scoring.RestoreScores(0.5, nil)
		return &pipeline{name: name, id: id, scores: sc}
	}
	// "speed" moved to id 2: its scores follow it, its commit (id 1's on
	// chain) does not; "new" starts afresh.
	pipes := []*pipeline{mk("speed", 2), mk("quality", 0), mk("new", 1)}
	if err := restorePipelines(pipes, s, 0.5); err != nil {
		t.Fatal(err)
	}
	if v := pipes[0].scores.Values(); v[1] != 0.75 || pipes[0].pending != nil {
		t.Fatalf("speed: %v, pending %+v", v, pipes[0].pending)
	}
	if v := pipes[1].scores.Values(); v[1] != 0.25 || pipes[1].lastSet != 5 {
		t.Fatalf("quality: %v, last set %d", v, pipes[1].lastSet)
	}
	if len(pipes[2].scores.Values()) != 0 {
		t.Fatal("a new mechanism has scores")
	}
	same := []*pipeline{mk("speed", 1)}
	restorePipelines(same, s, 0.5)
	if p := same[0].pending; p == nil || p.Block != 0 {
		t.Fatalf("the commit of a mechanism that kept its id: %+v (its block is asked of the chain again)", p)
	}
	// Version 1 is mechanism main, id 0.
	v1 := validatorState{Version: 1, Netuid: 1, Hotkey: addr.String(), Scores: entries(0.5), Pending: pending(0)}
	data, _ = json.Marshal(v1)
	if s, err = decodeValidatorState(data, 1, addr); err != nil {
		t.Fatal(err)
	}
	main := []*pipeline{mk(subnet.MainMechanism, 0)}
	restorePipelines(main, s, 0.5)
	if v := main[0].scores.Values(); v[1] != 0.5 || main[0].pending == nil {
		t.Fatalf("version 1 as main: %v %+v", v, main[0].pending)
	}

	for _, c := range []struct {
		name   string
		mutate func(*validatorState)
		want   string
	}{
		{"two mechanisms of one name", func(s *validatorState) { s.Mechanisms[1].Name = "quality" }, "each once"},
		{"two mechanisms of one id", func(s *validatorState) { s.Mechanisms[1].ID = 0 }, "each once"},
		{"an id past 15", func(s *validatorState) { s.Mechanisms[1].ID = 16 }, "each once"},
		{"a commit hashed for another mechanism", func(s *validatorState) { s.Mechanisms[1].Pending = pending(0) }, "hash does not match"},
		{"top-level scores in version 2", func(s *validatorState) { s.Scores = entries(0.1) }, "under mechanisms only"},
		{"mechanisms in version 1", func(s *validatorState) { s.Version = 1 }, "no mechanisms"},
		{"version 3", func(s *validatorState) { s.Version = 3 }, "want 1 or 2"},
	} {
		bad := v2
		bad.Mechanisms = append([]mechanismState(nil), v2.Mechanisms...)
		c.mutate(&bad)
		data, _ := json.Marshal(bad)
		if _, err := decodeValidatorState(data, 1, addr); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

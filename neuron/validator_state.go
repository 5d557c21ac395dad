package neuron

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/scoring"
	"github.com/cybertensor/cybertensor/subnet"
	"github.com/cybertensor/cybertensor/wallet"
)

// ValidatorStateFile is the name of the file, in ValidatorConfig.StateDir,
// that keeps a validator's scores and unrevealed weight commit across
// restarts.
const ValidatorStateFile = "validator-state.json"

// maxValidatorState bounds the state file: 4,096 uids with their hotkeys
// fit in well under a megabyte.
const maxValidatorState = 4 << 20

// validatorState is what a validator persists. A restart resumes the
// moving averages (so weights do not fall back to nothing) and reveals a
// weight commit made before it stopped.
//
// Version 1 is one mechanism's state (the top-level scores, commit, last
// set and weights), read as the mechanism named main, id 0. Version 2
// holds Mechanisms instead, one entry per mechanism; a validator writes it
// when it runs another set of mechanisms than that one.
type validatorState struct {
	Version int                  `json:"version"`
	Netuid  uint16               `json:"netuid"`
	Hotkey  string               `json:"hotkey"`
	Scores  []scoring.ScoreEntry `json:"scores"`
	// Pending is a commit not yet revealed.
	Pending *pendingCommit `json:"pending_commit,omitempty"`
	// LastSet is the block of the last weights set (or revealed).
	LastSet uint64 `json:"last_set"`
	// Answers are each miner's last answers, for "validator scores";
	// Weights the weights last set or revealed. A validator saves them
	// with its scores, and after a query round at most every
	// statusSaveEvery.
	Answers []Answer    `json:"answers,omitempty"`
	Weights *WeightsSet `json:"weights,omitempty"`
	// Mechanisms (version 2) are each mechanism's state.
	Mechanisms []mechanismState `json:"mechanisms,omitempty"`
	// Dropped counts the tasks dropped without scoring anyone.
	Dropped []DropCount `json:"dropped,omitempty"`
	// Saved is when the file was written, Unix ms.
	Saved int64 `json:"saved,omitempty"`
}

// mechanismState is one mechanism's scores and weights.
type mechanismState struct {
	// Name is the mechanism's name in the spec; ID its id on chain.
	Name    string               `json:"name"`
	ID      uint8                `json:"id"`
	Scores  []scoring.ScoreEntry `json:"scores"`
	Pending *pendingCommit       `json:"pending_commit,omitempty"`
	LastSet uint64               `json:"last_set"`
	Weights *WeightsSet          `json:"weights,omitempty"`
}

// mechanisms is every mechanism's state: version 1's as one named main.
func (s *validatorState) mechanisms() []mechanismState {
	if s.Version >= 2 {
		return s.Mechanisms
	}
	return []mechanismState{{Name: subnet.MainMechanism, Scores: s.Scores, Pending: s.Pending, LastSet: s.LastSet, Weights: s.Weights}}
}

// restorePipelines gives each pipeline the saved state of the mechanism
// of its name: its scores, last set and weights, and its pending commit
// if the mechanism kept its id (a commit is the chain's under that id).
func restorePipelines(pipes []*pipeline, s *validatorState, alpha float64) error {
	saved := map[string]mechanismState{}
	for _, m := range s.mechanisms() {
		saved[m.Name] = m
	}
	for _, p := range pipes {
		m, ok := saved[p.name]
		if !ok {
			continue
		}
		scores, err := scoring.RestoreScores(alpha, m.Scores)
		if err != nil {
			return fmt.Errorf("mechanism %s: %w", p.name, err)
		}
		p.scores, p.lastSet, p.weights = scores, m.LastSet, m.Weights
		if m.Pending != nil && m.ID == p.id {
			pc := *m.Pending
			pc.Block = 0 // ask the chain before revealing
			p.pending = &pc
		}
	}
	return nil
}

// Answer is one miner's answer to one of the validator's queries.
type Answer struct {
	UID    uint16 `json:"uid"`
	Hotkey string `json:"hotkey"`
	// Status is the protocol status (OK, INTERNAL, TIMEOUT, UNAVAILABLE…);
	// Reason the miner's message or why the query failed on this side.
	Status    string  `json:"status"`
	Reason    string  `json:"reason,omitempty"`
	Score     float64 `json:"score"`
	LatencyMs int64   `json:"latency_ms"`
	// Time is when it was scored, Unix ms.
	Time int64 `json:"time"`
	// Mechanism names the mechanism the task was of (omitted for a
	// validator running one, named main).
	Mechanism string `json:"mechanism,omitempty"`
	// Dropped says the answer was not scored (Score means nothing): its
	// judge failed, as Reason says; the miner's score is as it was.
	Dropped bool `json:"dropped,omitempty"`
	// Organic says it answered a gateway's client, not the validator's
	// own task (organic scoring).
	Organic bool `json:"organic,omitempty"`
	// Loss is an evaluated model's loss on the round's evaluation set
	// (a mechanism whose tasks come from commitments; nil otherwise).
	Loss *float64 `json:"loss,omitempty"`
}

// answersKept is how many of each miner's last answers a validator keeps.
const answersKept = 3

// Bounds of a state file's lists besides scores.
const (
	maxStateAnswers = answersKept * (1 << 16)
	maxStateDrops   = 1024
)

// WeightsSet is a weight vector the validator set (or revealed).
type WeightsSet struct {
	UIDs   []uint16 `json:"uids"`
	Values []uint16 `json:"values"`
	// Block is the chain height when they were set; Time when, Unix ms.
	Block uint64 `json:"block"`
	Time  int64  `json:"time"`
	// Revealed is set for weights revealed after a commit.
	Revealed bool `json:"revealed,omitempty"`
}

// ValidatorStatus is what a validator's state file says about its work:
// read by "validator scores", from a running validator's file or a stopped
// one's.
type ValidatorStatus struct {
	Netuid uint16 `json:"netuid"`
	Hotkey string `json:"hotkey"`
	// Scores are the moving averages of the miners' scores, by uid.
	Scores  []scoring.ScoreEntry `json:"scores"`
	Answers []Answer             `json:"answers"`
	// Weights are the last set or revealed, nil if none yet; Pending says
	// a commit waits to be revealed. With several mechanisms, these are
	// mechanism 0's, and Mechanisms has each one's.
	Weights *WeightsSet `json:"weights"`
	Pending bool        `json:"pending_commit"`
	// Mechanisms are each mechanism's scores and weights, for a validator
	// running several (or one not named main); nil otherwise.
	Mechanisms []MechanismStatus `json:"mechanisms,omitempty"`
	// Dropped counts the tasks dropped without scoring anyone, by
	// mechanism and reason.
	Dropped []DropCount `json:"dropped"`
	// Saved is when the validator wrote the file (zero if it did not say).
	Saved time.Time `json:"saved"`
}

// ReadValidatorStatus reads the state file a validator keeps in dir
// (ValidatorConfig.StateDir), written atomically, so it may be read while
// the validator runs.
func ReadValidatorStatus(dir string) (*ValidatorStatus, error) {
	path := filepath.Join(dir, ValidatorStateFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("neuron: validator state: %w", err)
	}
	var head struct {
		Netuid uint16 `json:"netuid"`
		Hotkey string `json:"hotkey"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("neuron: validator state %s: %w", path, err)
	}
	hot, _, err := wallet.ParseAddress(head.Hotkey)
	if err != nil {
		return nil, fmt.Errorf("neuron: validator state %s: hotkey: %w", path, err)
	}
	st, err := decodeValidatorState(data, head.Netuid, hot)
	if err != nil {
		return nil, fmt.Errorf("neuron: validator state %s: %w", path, err)
	}
	out := &ValidatorStatus{Netuid: st.Netuid, Hotkey: st.Hotkey, Scores: st.Scores, Answers: st.Answers, Weights: st.Weights, Pending: st.Pending != nil,
		Dropped: st.Dropped}
	if st.Version >= 2 {
		for _, m := range st.Mechanisms {
			out.Mechanisms = append(out.Mechanisms, MechanismStatus{Name: m.Name, ID: m.ID, Scores: m.Scores, Weights: m.Weights, Pending: m.Pending != nil})
			if m.ID == 0 {
				out.Scores, out.Weights, out.Pending = m.Scores, m.Weights, m.Pending != nil
			}
		}
	}
	if out.Dropped == nil {
		out.Dropped = []DropCount{}
	}
	if st.Saved != 0 {
		out.Saved = time.UnixMilli(st.Saved).UTC()
	}
	if out.Scores == nil {
		out.Scores = []scoring.ScoreEntry{}
	}
	if out.Answers == nil {
		out.Answers = []Answer{}
	}
	return out, nil
}

// MechanismStatus is one mechanism's part of a ValidatorStatus.
type MechanismStatus struct {
	Name    string               `json:"name"`
	ID      uint8                `json:"id"`
	Scores  []scoring.ScoreEntry `json:"scores"`
	Weights *WeightsSet          `json:"weights"`
	Pending bool                 `json:"pending_commit"`
}

// pendingCommit is a commit_weights the validator must reveal: the weights
// and salt whose hash it committed.
type pendingCommit struct {
	UIDs       []uint16 `json:"uids"`
	Values     []uint16 `json:"values"`
	Salt       []byte   `json:"salt"`
	VersionKey uint64   `json:"version_key"`
	Hash       []byte   `json:"hash"`
	// Block is the block that included the commit; 0 until known.
	Block uint64 `json:"block"`
}

// decodeValidatorState parses and checks a state file for hotkey on
// netuid. Every inconsistency is an error: a validator does not guess.
func decodeValidatorState(data []byte, netuid uint16, hotkey wallet.Address) (*validatorState, error) {
	if len(data) > maxValidatorState {
		return nil, fmt.Errorf("%d bytes, at most %d", len(data), maxValidatorState)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var s validatorState
	if err := dec.Decode(&s); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the state")
	}
	switch {
	case s.Version != 1 && s.Version != 2:
		return nil, fmt.Errorf("version %d, want 1 or 2", s.Version)
	case s.Netuid != netuid:
		return nil, fmt.Errorf("state of netuid %d, not %d", s.Netuid, netuid)
	case s.Hotkey != hotkey.String():
		return nil, fmt.Errorf("state of hotkey %s, not %s", s.Hotkey, hotkey)
	case s.Version == 1 && len(s.Mechanisms) > 0:
		return nil, errors.New("version 1 has no mechanisms")
	case s.Version == 2 && (s.Scores != nil || s.Pending != nil || s.LastSet != 0 || s.Weights != nil):
		return nil, errors.New("version 2 keeps scores and weights under mechanisms only")
	case len(s.Mechanisms) > subnet.MaxMechanisms:
		return nil, fmt.Errorf("%d mechanisms, at most %d", len(s.Mechanisms), subnet.MaxMechanisms)
	}
	names, ids := map[string]bool{}, map[uint8]bool{}
	for _, m := range s.mechanisms() {
		what := ""
		if s.Version >= 2 {
			what = fmt.Sprintf("mechanism %q: ", m.Name)
			if m.Name == "" || names[m.Name] || ids[m.ID] || int(m.ID) >= subnet.MaxMechanisms {
				return nil, fmt.Errorf("%sa name and an id below %d, each once", what, subnet.MaxMechanisms)
			}
			names[m.Name], ids[m.ID] = true, true
		}
		if _, err := scoring.RestoreScores(1, m.Scores); err != nil {
			return nil, fmt.Errorf("%s%w", what, err)
		}
		if p := m.Pending; p != nil {
			if len(p.UIDs) != len(p.Values) || len(p.UIDs) == 0 || len(p.Salt) == 0 || len(p.Salt) > 64 {
				return nil, fmt.Errorf("%spending commit: want as many uids as values, at least one, and a salt of 1 to 64 bytes", what)
			}
			want := chain.CommitHashMechanism(hotkey, netuid, m.ID, p.UIDs, p.Values, p.Salt, p.VersionKey)
			if !bytes.Equal(p.Hash, want[:]) {
				return nil, fmt.Errorf("%spending commit: hash does not match its weights and salt", what)
			}
		}
	}
	if len(s.Answers) > maxStateAnswers || len(s.Dropped) > maxStateDrops {
		return nil, errors.New("too many answers or drop counts")
	}
	return &s, nil
}

// loadValidatorState reads dir's state file; no file is an empty state.
func loadValidatorState(dir string, netuid uint16, hotkey wallet.Address) (*validatorState, error) {
	path := filepath.Join(dir, ValidatorStateFile)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return &validatorState{Version: 1, Netuid: netuid, Hotkey: hotkey.String()}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("neuron: validator state: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxValidatorState+1))
	if err != nil {
		return nil, fmt.Errorf("neuron: validator state: %w", err)
	}
	s, err := decodeValidatorState(data, netuid, hotkey)
	if err != nil {
		return nil, fmt.Errorf("neuron: validator state %s: %w (move it away to start afresh)", path, err)
	}
	return s, nil
}

// saveValidatorState replaces dir's state file atomically: a crash leaves
// the old file or the new one, never a mix.
func saveValidatorState(dir string, s *validatorState) error {
	s.Saved = time.Now().UnixMilli()
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ValidatorStateFile+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, ValidatorStateFile)); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

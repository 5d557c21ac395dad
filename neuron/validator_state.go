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
	// Saved is when the file was written, Unix ms.
	Saved int64 `json:"saved,omitempty"`
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
}

// answersKept is how many of each miner's last answers a validator keeps.
const answersKept = 3

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
	// a commit waits to be revealed.
	Weights *WeightsSet `json:"weights"`
	Pending bool        `json:"pending_commit"`
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
	out := &ValidatorStatus{Netuid: st.Netuid, Hotkey: st.Hotkey, Scores: st.Scores, Answers: st.Answers, Weights: st.Weights, Pending: st.Pending != nil}
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
	case s.Version != 1:
		return nil, fmt.Errorf("version %d, want 1", s.Version)
	case s.Netuid != netuid:
		return nil, fmt.Errorf("state of netuid %d, not %d", s.Netuid, netuid)
	case s.Hotkey != hotkey.String():
		return nil, fmt.Errorf("state of hotkey %s, not %s", s.Hotkey, hotkey)
	}
	if _, err := scoring.RestoreScores(1, s.Scores); err != nil {
		return nil, err
	}
	if p := s.Pending; p != nil {
		if len(p.UIDs) != len(p.Values) || len(p.UIDs) == 0 || len(p.Salt) == 0 || len(p.Salt) > 64 {
			return nil, errors.New("pending commit: want as many uids as values, at least one, and a salt of 1 to 64 bytes")
		}
		want := chain.CommitHash(hotkey, netuid, p.UIDs, p.Values, p.Salt, p.VersionKey)
		if !bytes.Equal(p.Hash, want[:]) {
			return nil, errors.New("pending commit: hash does not match its weights and salt")
		}
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

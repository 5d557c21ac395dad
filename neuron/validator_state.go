package neuron

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

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

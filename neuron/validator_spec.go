package neuron

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/cybertensor/cybertensor/knowledge"
	"github.com/cybertensor/cybertensor/subnet"
)

// This file is how a validator follows its subnet's spec: at each tempo
// boundary it reads the subnet's spec hash on chain, and when the owner
// set a new one (SetSubnetSpec, effective at the boundary) it loads that
// spec and the files it refers to from the knowledge library (or the
// swarm, through it), verified by CID, and rebuilds its pipelines. Scores
// of a mechanism that keeps its name carry over. A spec that fails to load
// is logged loudly and the old one keeps running.

// defaultFetchTimeout bounds fetching a dataset, or a new spec and its
// files, by CID (ValidatorConfig.FetchTimeout).
const defaultFetchTimeout = 2 * time.Minute

// maxSpecFile bounds each file a switched-to spec refers to.
const maxSpecFile = subnet.MaxLockedFile

// SpecCID is where a spec's text lives in the knowledge library: a body
// under 256 KiB imported with raw leaves is one raw block, so its CID is
// CIDv1(raw, sha2-256(text)), named by the spec hash on chain alone.
func SpecCID(hash []byte) (cid.Cid, error) {
	mh, err := multihash.Encode(hash, multihash.SHA2_256)
	if err != nil {
		return cid.Undef, err
	}
	return cid.NewCidV1(cid.Raw, mh), nil
}

// specStep runs at every head: at the subnet's tempo boundaries (and
// once at start) it reads the spec hash on chain and switches to a new
// spec. A validator without a spec never switches.
func (v *Validator) specStep(ctx context.Context, height uint64) {
	if v.cfg.Spec == nil {
		return
	}
	var cur [32]byte
	hash, ok := v.specWatch.changed(ctx, v.chain, v.cfg.Netuid, height, func() [32]byte {
		v.mu.Lock()
		defer v.mu.Unlock()
		cur = v.spec.Hash()
		return cur
	}, v.log)
	if !ok {
		return
	}
	want := hex.EncodeToString(hash)
	if err := v.switchSpec(ctx, hash); err != nil {
		if ctx.Err() != nil {
			return
		}
		v.specWatch.failed = want
		v.log.Error("THE SUBNET'S SPEC CHANGED ON CHAIN AND THIS VALIDATOR CANNOT LOAD IT: it keeps running the old spec (it tries again when the hash on chain changes, or restart it)",
			"spec_hash", want, "old_spec_hash", hex.EncodeToString(cur[:]), "err", err)
		return
	}
	v.specWatch.failed = ""
	v.log.Info("switched to the subnet's new spec", "spec_hash", want, "block", height, "mechanisms", v.Mechanisms())
}

// switchSpec loads the spec of hash, its files, and its pipelines, and
// puts them in place of the running ones.
func (v *Validator) switchSpec(ctx context.Context, hash []byte) error {
	if v.lib == nil {
		return errors.New("the validator has no knowledge library (KnowledgeDir and the swarm) to fetch specs from")
	}
	ctx, cancel := context.WithTimeout(ctx, v.cfg.FetchTimeout)
	defer cancel()
	spec, dir, err := loadSpec(ctx, v.lib, hash, v.specDirFor(hash))
	if err != nil {
		return err
	}
	env := v.env
	env.cfg.Reward = nil // the new spec's
	env.cfg.Spec = spec
	env.specDir = dir
	pipes, err := buildPipelines(env, spec)
	if err != nil {
		return err
	}
	v.mu.Lock()
	old := v.pipes
	byName := map[string]*pipeline{}
	for _, p := range old {
		byName[p.name] = p
	}
	for _, p := range pipes {
		if o, ok := byName[p.name]; ok {
			p.scores, p.lastSet, p.weights, p.rotation = o.scores, o.lastSet, o.weights, o.rotation
			if o.id == p.id {
				p.pending = o.pending
			}
		}
	}
	// The cadence the validator took from the old spec follows the new
	// one; what its operator set otherwise stays.
	was := v.spec
	follow := func(cur *uint64, old, now uint64) {
		if *cur == old {
			*cur = now
		}
	}
	follow(&v.cfg.QueryEvery, was.Query.Every, spec.Query.Every)
	follow(&v.cfg.WeightsEvery, was.WeightsEvery, spec.WeightsEvery)
	if v.cfg.Timeout == was.Query.Timeout {
		v.cfg.Timeout = spec.Query.Timeout
	}
	if v.cfg.Sample == was.Query.Sample {
		v.cfg.Sample = spec.Query.Sample
	}
	v.spec, v.pipes, v.scores = spec, pipes, pipes[0].scores
	v.mu.Unlock()
	// The old pipelines' rounds in flight finish (their scores are the new
	// ones' where the mechanism stayed) before their hooks stop.
	for _, p := range old {
		p.roundsWG.Wait()
	}
	closePipelines(old)
	if err := v.saveState(); err != nil {
		v.log.Warn("saving validator state", "err", err)
	}
	return nil
}

// specDirFor is where a switched-to spec's files are kept: under the
// state directory, else the knowledge directory, by the spec's hash.
func (v *Validator) specDirFor(hash []byte) string {
	base := v.cfg.StateDir
	if base == "" {
		base = v.cfg.KnowledgeDir
	}
	return filepath.Join(base, "specs", hex.EncodeToString(hash))
}

// loadSpec fetches the spec of hash from lib (verified: its CID is the
// hash), parses it, and fetches each file it refers to by the CID its
// files: lock names into dir (programs executable). It returns the spec
// and dir.
func loadSpec(ctx context.Context, lib *knowledge.Library, hash []byte, dir string) (*subnet.Spec, string, error) {
	spec, err := fetchSpec(ctx, lib, hash)
	if err != nil {
		return nil, "", err
	}
	refs := spec.ReferencedFiles()
	if len(refs) == 0 {
		return spec, dir, nil
	}
	programs := map[string]bool{}
	for _, m := range spec.EffectiveMechanisms() {
		for _, argv := range [][]string{m.Tasks.Command, judgeCommand(m.Judge)} {
			if len(argv) > 0 {
				programs[filepath.ToSlash(filepath.Clean(argv[0]))] = true
			}
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", err
	}
	for _, path := range refs {
		want, ok := spec.Files[path]
		if !ok {
			return nil, "", fmt.Errorf("the spec refers to %s but its files: lock does not name its CID", path)
		}
		fc, err := knowledge.ParseCID(want)
		if err != nil {
			return nil, "", fmt.Errorf("files.%s: %w", path, err)
		}
		mode := os.FileMode(0o644)
		if programs[path] {
			mode = 0o755
		}
		err = writeFileAtomic(filepath.Join(dir, filepath.FromSlash(path)), mode, func(w io.Writer) error {
			_, err := lib.Get(ctx, fc, &boundedWriter{w: w, left: maxSpecFile, over: fmt.Errorf("more than %d bytes", maxSpecFile)})
			return err
		})
		if err != nil {
			return nil, "", fmt.Errorf("fetching %s (%s): %w", path, fc, err)
		}
	}
	// What runs is what the hash covers, and can run: datasets are valid
	// tasks, prompts valid templates, programs executable.
	if err := subnet.Resolve(spec, dir); err != nil {
		return nil, "", fmt.Errorf("the spec's files: %w", err)
	}
	return spec, dir, nil
}

func judgeCommand(j *subnet.Judge) []string {
	if j == nil || j.Kind != subnet.JudgeExec {
		return nil
	}
	return j.Command
}

// writeFileAtomic writes what write writes to path (making its
// directory) through a temporary file and a rename: path is the whole of
// it or not there.
func writeFileAtomic(path string, mode os.FileMode, write func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// boundedWriter passes at most left bytes on to w and refuses more with
// over.
type boundedWriter struct {
	w    io.Writer
	left int64
	over error
}

func (b *boundedWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > b.left {
		return 0, b.over
	}
	b.left -= int64(len(p))
	return b.w.Write(p)
}

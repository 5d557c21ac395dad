package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	"github.com/spf13/cobra"

	"github.com/cybertensor/cybertensor/chainlink/comet"
	"github.com/cybertensor/cybertensor/knowledge"
	"github.com/cybertensor/cybertensor/subnet"
	"github.com/cybertensor/cybertensor/wallet"
)

// loadSpec reads and validates a spec from a file or a built-in name; a
// bad spec is a usage error naming its line. A v2 spec file is locked
// against the files it refers to, relative to its directory (subnet.Lock):
// the spec returned is the locked one, whose hash covers them.
func loadSpec(file, builtin string) (*subnet.Spec, error) {
	switch {
	case file != "" && builtin != "":
		return nil, usageError(errors.New("--spec and --builtin are exclusive"))
	case builtin != "":
		s, err := subnet.Builtin(builtin)
		if err != nil {
			return nil, usageError(err)
		}
		return s, nil
	case file != "":
		s, err := parseSpecFile(file)
		if err != nil {
			return nil, err
		}
		return lockSpecFile(file, s)
	}
	return nil, nil
}

// parseSpecFile reads and parses a spec file; a bad one is a usage error
// naming its line.
func parseSpecFile(file string) (*subnet.Spec, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, usageError(fmt.Errorf("--spec: %w", err))
	}
	s, err := subnet.Parse(b)
	if err != nil {
		return nil, usageError(fmt.Errorf("%s: %w", file, err))
	}
	return s, nil
}

// lockSpecFile locks s, read from file, against the files it refers to,
// relative to file's directory (subnet.Lock).
func lockSpecFile(file string, s *subnet.Spec) (*subnet.Spec, error) {
	s, err := subnet.Lock(s, filepath.Dir(file))
	if err != nil {
		return nil, usageError(fmt.Errorf("%s: %w", file, err))
	}
	return s, nil
}

// checkSpecFiles reads and checks the files a spec refers to, relative to
// the spec file — a v1 spec's dataset; everything a v2 spec names
// (subnet.Resolve: files present and matching the lock, datasets valid for
// their synapse, prompt files valid templates, exec programs executable) —
// so that a spec its validators could not run is refused, as a usage
// error, before anything is kept or sent.
func checkSpecFiles(specFile string, spec *subnet.Spec) error {
	if spec == nil || specFile == "" {
		return nil
	}
	if spec.Version >= 2 {
		if err := subnet.Resolve(spec, filepath.Dir(specFile)); err != nil {
			return usageError(fmt.Errorf("%s: %w", specFile, err))
		}
		return nil
	}
	if spec.Tasks.Source != subnet.FromDataset {
		return nil
	}
	if _, err := datasetTasks(specFile, spec.Tasks.Path); err != nil {
		return usageError(err)
	}
	return nil
}

// specCID is where a spec's text lives in the knowledge library: a body
// under 256 KiB imported with raw leaves is one raw block, so its CID is
// CIDv1(raw, sha2-256(text)) — named by the spec hash on chain alone.
func specCID(hash []byte) (cid.Cid, error) {
	mh, err := multihash.Encode(hash, multihash.SHA2_256)
	if err != nil {
		return cid.Undef, err
	}
	return cid.NewCidV1(cid.Raw, mh), nil
}

// keepSpec stores the spec's text in the local knowledge library, signed
// by key's hotkey, so "subnets spec" can print it and neurons can fetch it;
// and each file it refers to (relative to specFile), whose body CID must
// be the one the spec's files: section locked.
func (a *app) keepSpec(key *wallet.PrivateKey, s *subnet.Spec, specFile string) (cid.Cid, error) {
	lib, err := a.openLibrary(key)
	if err != nil {
		return cid.Undef, err
	}
	defer lib.Close()
	for _, path := range s.ReferencedFiles() {
		f, err := os.Open(filepath.Join(filepath.Dir(specFile), filepath.FromSlash(path)))
		if err != nil {
			return cid.Undef, err
		}
		obj, err := lib.Publish(context.Background(), f, knowledge.Meta{Title: "subnet spec " + s.Name + ": " + path, Tags: []string{"subnet-spec-file"}})
		f.Close()
		if err != nil && !errors.Is(err, knowledge.ErrNotShared) {
			return cid.Undef, fmt.Errorf("publishing %s: %w", path, err)
		}
		if obj.Body.String() != s.Files[path] {
			return cid.Undef, fmt.Errorf("%s changed since the spec was locked: its CID is %s, not %s", path, obj.Body, s.Files[path])
		}
	}
	obj, err := lib.Publish(context.Background(), bytes.NewReader(s.Text()), knowledge.Meta{MediaType: "application/yaml", Title: "subnet spec: " + s.Name, Tags: []string{"subnet-spec"}})
	if err != nil && !errors.Is(err, knowledge.ErrNotShared) {
		return cid.Undef, err
	}
	h := s.Hash()
	want, _ := specCID(h[:])
	if !obj.Body.Equals(want) {
		return cid.Undef, fmt.Errorf("the spec's body CID %s is not %s", obj.Body, want)
	}
	return obj.Body, nil
}

func (a *app) subnetsSpec() *cobra.Command {
	var f chainFlags
	var netuid uint16
	cmd := &cobra.Command{
		Use:   "spec [NETUID]",
		Short: "Print a subnet's spec: the text whose SHA-256 the chain holds, from the knowledge library",
		Long: `Print a subnet's spec: the text whose SHA-256 the chain holds, read from the local knowledge library.

With --json it prints an object: netuid, spec_hash (hex), cid (the text's knowledge CID), version (1 or 2),
spec (the parsed spec by its YAML field names, defaults filled in), files (a version 2 spec's lock: each file
it refers to, by path, with its knowledge CID; {} if none) and text. The reference is docs/subnet-language.md.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if cmd.Flags().Changed("netuid") {
					return usageError(errors.New("give the netuid once: as an argument or with --netuid"))
				}
				n, err := strconv.ParseUint(args[0], 10, 16)
				if err != nil {
					return usageError(fmt.Errorf("netuid %q: want a number from 0 to 65535", args[0]))
				}
				netuid = uint16(n)
			}
			return a.withChain(cmd, &f, func(ctx context.Context, c *comet.Client) error {
				info, err := c.Subnet(ctx, netuid)
				if err != nil {
					return err
				}
				if len(info.SpecHash) == 0 {
					return fmt.Errorf("subnet %d was opened without a spec", netuid)
				}
				id, err := specCID(info.SpecHash)
				if err != nil {
					return err
				}
				lib, err := a.openLibrary(nil)
				if err != nil {
					return err
				}
				defer lib.Close()
				var text bytes.Buffer
				if _, err := lib.Get(ctx, id, &text); err != nil {
					return fmt.Errorf("the spec of subnet %d (%s) is not in the local library; fetch it with: cybertensor knowledge get %s --peer MULTIADDR (%w)", netuid, id, id, err)
				}
				spec, err := subnet.Parse(text.Bytes())
				if err != nil {
					return fmt.Errorf("the spec of subnet %d does not validate: %w", netuid, err)
				}
				if f.json {
					fields, err := spec.Fields()
					if err != nil {
						return err
					}
					files := spec.Files
					if files == nil {
						files = map[string]string{}
					}
					return writeJSON(cmd.OutOrStdout(), map[string]any{"netuid": netuid, "spec_hash": hex.EncodeToString(info.SpecHash), "cid": id.String(),
						"version": max(spec.Version, 1), "spec": fields, "files": files, "text": text.String()})
				}
				_, err = cmd.OutOrStdout().Write(text.Bytes())
				return err
			})
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	netuidFlag(cmd, &netuid)
	return cmd
}

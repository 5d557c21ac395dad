package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/chainlink/comet"
	"github.com/cybertensor/cybertensor/subnet"
)

// setSpecOut is "subnets set-spec --json".
type setSpecOut struct {
	txOutcome
	Netuid         uint16 `json:"netuid"`
	SpecHash       string `json:"spec_hash"`
	CID            string `json:"cid"`
	EffectiveBlock uint64 `json:"effective_block"`
	// Mechanisms are the shares sent with the spec when its mechanisms
	// differ from the subnet's (omitted when they agree).
	Mechanisms []uint32 `json:"mechanisms,omitempty"`
}

func (a *app) subnetsSetSpec() *cobra.Command {
	var f chainFlags
	var k keyFlags
	var specFile, builtinSpec string
	cmd := &cobra.Command{
		Use:   "set-spec NETUID --spec FILE",
		Short: "Replace a subnet's spec (owner only): the new hash takes effect at the subnet's next epoch block",
		Long: `Replace a subnet's spec. The spec is validated, with the files it refers to,
before anything is sent; its text is kept in the local knowledge library (as
subnets create does) and its SHA-256 sent to the chain, where it is pending
until the subnet's next epoch block (its tempo boundary). From that block on
the chain's spec hash is the new one, and validators and miners switch to it.
A spec's mechanisms switch at the same block: when their shares differ from
the subnet's, set-spec sends them in the same transaction (as subnets
mechanisms set would; a spec without mechanisms: is one mechanism). A second set-spec before then
replaces the pending one. Only the subnet's
owner may; subnets list --json and the subnet's info show spec_hash,
pending_spec_hash and spec_effective_block.`,
		Example: `  cybertensor subnets set-spec 1 --spec summarize.yaml
  cybertensor subnets set-spec 1 --builtin text --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.ParseUint(args[0], 10, 16)
			if err != nil || n == 0 {
				return usageError(fmt.Errorf("netuid %q: want a subnet's number, 1 to 65535", args[0]))
			}
			netuid := uint16(n)
			if specFile == "" && builtinSpec == "" {
				return usageError(errors.New("give the new spec with --spec FILE (or --builtin NAME)"))
			}
			spec, err := loadSpec(specFile, builtinSpec)
			if err != nil {
				return err
			}
			if err := checkSpecFiles(specFile, spec); err != nil {
				return err
			}
			key, err := a.coldkey(&k)
			if err != nil {
				return err
			}
			hash := spec.Hash()
			return a.withChain(cmd, &f, func(ctx context.Context, c *comet.Client) error {
				// Refuse a stranger before the library is written to.
				sub, err := c.Subnet(ctx, netuid)
				if err != nil {
					return err
				}
				if owner := key.PublicKey().Address(); sub.Owner != owner {
					return &exitError{code: exitFailure, err: fmt.Errorf("subnet %d is owned by %s, not %s: only its owner may set its spec", netuid, sub.Owner, owner)}
				}
				id, err := a.keepSpec(key, spec, specFile)
				if err != nil {
					return fmt.Errorf("keeping the spec in the knowledge library: %w", err)
				}
				// The spec's mechanisms switch at the same block, in the
				// same transaction, when they differ from the subnet's.
				shares, err := a.changedMechanisms(ctx, c, netuid, spec)
				if err != nil {
					return err
				}
				msg := &chainpb.Msg{Sum: &chainpb.Msg_SetSubnetSpec{SetSubnetSpec: &chainpb.SetSubnetSpec{Netuid: uint32(netuid), SpecHash: hash[:], MechanismShares: shares}}}
				rec, err := chainlink.NewSender(c, key).Send(ctx, msg)
				var te *chainlink.TxError
				if errors.As(err, &te) {
					return &exitError{code: exitFailure, err: err}
				}
				if err != nil {
					return err
				}
				var at uint64
				for _, e := range rec.Events {
					if e.Type == "subnet_spec_scheduled" {
						at, _ = strconv.ParseUint(e.Attrs["effective_block"], 10, 64)
					}
				}
				out := setSpecOut{Netuid: netuid, SpecHash: hex.EncodeToString(hash[:]), CID: id.String(), EffectiveBlock: at, Mechanisms: shares}
				out.TxHash, out.Height, out.Signer, out.Events = strings.ToUpper(hex.EncodeToString(rec.TxHash[:])), rec.Height, key.PublicKey().Address().String(), rec.Events
				if f.json {
					return writeJSON(cmd.OutOrStdout(), out)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "included in block %d (tx %s)\n", out.Height, out.TxHash)
				fmt.Fprintf(cmd.OutOrStdout(), "spec %q (%s, text %s in the knowledge library) becomes subnet %d's spec at block %d, its next epoch block\n",
					spec.Name, out.SpecHash, out.CID, netuid, at)
				if out.Mechanisms != nil {
					fmt.Fprintf(cmd.OutOrStdout(), "with its %d mechanism(s) (%s)\n", len(out.Mechanisms), percentList(out.Mechanisms))
				}
				return nil
			})
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	addColdkeyFlags(cmd, &k)
	cmd.Flags().StringVar(&specFile, "spec", "", "the new spec file (validated, with the files it refers to, before anything is sent)")
	cmd.Flags().StringVar(&builtinSpec, "builtin", "", "a built-in spec instead of --spec: "+strings.Join(subnet.BuiltinNames(), ", "))
	return cmd
}

// changedMechanisms is spec's mechanism shares (one mechanism for a spec
// without mechanisms:), or nil if the subnet's shares, pending or
// current, are already those.
func (a *app) changedMechanisms(ctx context.Context, c *comet.Client, netuid uint16, spec *subnet.Spec) ([]uint32, error) {
	want := []uint32{1}
	if len(spec.Mechanisms) > 1 {
		var err error
		if want, err = mechanismShares(specShares(spec)); err != nil {
			return nil, usageError(err)
		}
	}
	info, err := c.Mechanisms(ctx, netuid)
	if err != nil {
		return nil, err
	}
	have := info.Shares
	if info.PendingShares != nil {
		have = info.PendingShares
	}
	if sameProportions(have, want) {
		return nil, nil
	}
	return want, nil
}

// sameProportions says whether two share lists split emission alike.
func sameProportions(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	var sa, sb uint64
	for i := range a {
		sa, sb = sa+uint64(a[i]), sb+uint64(b[i])
	}
	for i := range a {
		if uint64(a[i])*sb != uint64(b[i])*sa {
			return false
		}
	}
	return true
}

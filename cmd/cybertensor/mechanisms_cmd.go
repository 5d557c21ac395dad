package main

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/chainlink/comet"
	"github.com/cybertensor/cybertensor/subnet"
	"github.com/cybertensor/cybertensor/wallet"
)

// This file holds "subnets mechanisms": a subnet's incentive mechanisms,
// each with its own weights and a share of the subnet's emission.

func (a *app) subnetsMechanisms() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mechanisms",
		Short: "Show or set a subnet's incentive mechanisms and their shares of its emission",
		Long: `A subnet runs 1 to 16 incentive mechanisms. Each has its own weights (weights
set|commit|reveal --mechanism M), bonds, consensus and incentive, and gets a
share of the subnet's emission. A subnet that never set mechanisms has one,
with all of it.`,
	}
	cmd.AddCommand(a.subnetsMechanismsSet(), a.subnetsMechanismsGet())
	return cmd
}

// parseShares reads --shares: 1 to 16 comma-separated positive decimal
// numbers, as exact fractions scaled to the smallest whole numbers in the
// same proportions (0.7,0.3 is 7,3), which the chain normalises by their
// sum.
func parseShares(list string) ([]uint32, error) {
	parts := strings.Split(list, ",")
	if list == "" || len(parts) > chain.MaxMechanisms {
		return nil, fmt.Errorf("--shares: give 1 to %d comma-separated shares, e.g. 0.7,0.3", chain.MaxMechanisms)
	}
	rats := make([]*big.Rat, len(parts))
	for i, p := range parts {
		p = strings.TrimSpace(p)
		r, ok := new(big.Rat).SetString(p)
		if !ok || r.Sign() <= 0 || strings.ContainsAny(p, "/eE") {
			return nil, fmt.Errorf("--shares entry %d %q: want a positive decimal number", i+1, p)
		}
		rats[i] = r
	}
	return sharesFromRats(rats)
}

// mechanismShares turns a spec's mechanism shares (positive reals that sum
// to 1) into the chain's whole-number shares in the same proportions, to
// the nearest millionth.
func mechanismShares(shares []float64) ([]uint32, error) {
	if len(shares) == 0 || len(shares) > chain.MaxMechanisms {
		return nil, fmt.Errorf("%d mechanism shares: a subnet has 1 to %d", len(shares), chain.MaxMechanisms)
	}
	rats := make([]*big.Rat, len(shares))
	for i, s := range shares {
		r := new(big.Rat)
		if s <= 0 || r.SetFloat64(s) == nil {
			return nil, fmt.Errorf("mechanism %d: share %v is not positive", i, s)
		}
		// To the nearest millionth, at least one.
		micro := new(big.Rat).Mul(r, big.NewRat(1_000_000, 1))
		n := new(big.Int).Quo(new(big.Int).Add(new(big.Int).Mul(micro.Num(), big.NewInt(2)), micro.Denom()), new(big.Int).Mul(micro.Denom(), big.NewInt(2)))
		if n.Sign() == 0 {
			n.SetInt64(1)
		}
		rats[i] = new(big.Rat).SetInt(n)
	}
	return sharesFromRats(rats)
}

// sharesFromRats scales positive fractions to the smallest whole numbers
// in the same proportions; each must fit 32 bits.
func sharesFromRats(rats []*big.Rat) ([]uint32, error) {
	lcm := big.NewInt(1)
	for _, r := range rats {
		g := new(big.Int).GCD(nil, nil, lcm, r.Denom())
		lcm.Mul(lcm, new(big.Int).Quo(r.Denom(), g))
	}
	ints := make([]*big.Int, len(rats))
	gcd := new(big.Int)
	for i, r := range rats {
		ints[i] = new(big.Int).Mul(r.Num(), new(big.Int).Quo(lcm, r.Denom()))
		gcd.GCD(nil, nil, gcd, ints[i])
	}
	out := make([]uint32, len(ints))
	for i, n := range ints {
		n.Quo(n, gcd)
		if !n.IsUint64() || n.Uint64() > 1<<32-1 {
			return nil, fmt.Errorf("shares %v are too fine-grained: in whole numbers share %d is %s, above 2^32-1", ratStrings(rats), i+1, n)
		}
		out[i] = uint32(n.Uint64())
	}
	return out, nil
}

func ratStrings(rats []*big.Rat) []string {
	out := make([]string, len(rats))
	for i, r := range rats {
		out[i] = r.FloatString(6)
	}
	return out
}

// sharePercents is each share's percentage of their sum.
func sharePercents(shares []uint32) []float64 {
	var sum uint64
	for _, s := range shares {
		sum += uint64(s)
	}
	out := make([]float64, len(shares))
	for i, s := range shares {
		out[i] = 100 * float64(s) / float64(sum)
	}
	return out
}

func setMechanismsMsg(netuid uint16, shares []uint32) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_SetMechanisms{SetMechanisms: &chainpb.SetMechanisms{Netuid: uint32(netuid), Shares: shares}}}
}

func (a *app) subnetsMechanismsSet() *cobra.Command {
	var f chainFlags
	var k keyFlags
	var netuid uint16
	var list string
	cmd := &cobra.Command{
		Use:   "set",
		Short: "Set a subnet's mechanisms and their emission shares (subnet owner only; applies at the subnet's next epoch block)",
		Long: `Set the number of a subnet's incentive mechanisms and each one's share of its
emission: --shares 0.7,0.3 runs two, mechanism 0 with 70% and mechanism 1 with
30%. Shares are positive and normalised by their sum (3,1 is the same as
0.75,0.25); 1 to 16 of them. Only the subnet's owner may; the change applies
at the subnet's next epoch block, after that block's epoch, and a later set
before then replaces it. Going down in count deletes the dropped mechanisms'
weights and bonds; --shares 1 returns the subnet to one mechanism.`,
		Example: `  cybertensor subnets mechanisms set --netuid 1 --shares 0.7,0.3
  cybertensor subnets mechanisms set --netuid 1 --shares 1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			shares, err := parseShares(list)
			if err != nil {
				return usageError(err)
			}
			key, err := a.coldkey(&k)
			if err != nil {
				return err
			}
			return a.withChain(cmd, &f, func(ctx context.Context, c *comet.Client) error {
				rec, err := a.send(ctx, cmd.OutOrStdout(), c, key, setMechanismsMsg(netuid, shares), &f)
				if err != nil || f.json {
					return err
				}
				printScheduled(cmd, rec, "mechanisms_scheduled", fmt.Sprintf("%d mechanisms (%s)", len(shares), percentList(shares)))
				return nil
			})
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	addColdkeyFlags(cmd, &k)
	netuidFlag(cmd, &netuid)
	cmd.Flags().StringVar(&list, "shares", "", "comma-separated positive emission shares, one per mechanism, normalised by their sum (e.g. 0.7,0.3)")
	cmd.MarkFlagRequired("shares")
	return cmd
}

// printScheduled says when a scheduled change takes effect, from its
// event's effective_block.
func printScheduled(cmd *cobra.Command, rec *chainlink.Receipt, event, what string) {
	for _, e := range rec.Events {
		if e.Type == event {
			fmt.Fprintf(cmd.OutOrStdout(), "%s take effect at block %s (the subnet's next epoch block)\n", what, e.Attrs["effective_block"])
		}
	}
}

func percentList(shares []uint32) string {
	parts := make([]string, len(shares))
	for i, p := range sharePercents(shares) {
		parts[i] = strconv.FormatFloat(p, 'f', 2, 64) + "%"
	}
	return strings.Join(parts, ", ")
}

// mechanismsOut is "subnets mechanisms get --json".
type mechanismsOut struct {
	chain.MechanismsInfo
	// Percent is each current share's percentage of the subnet's emission.
	Percent []float64 `json:"percent"`
}

func (a *app) subnetsMechanismsGet() *cobra.Command {
	var f chainFlags
	var netuid uint16
	cmd := &cobra.Command{
		Use:   "get",
		Short: "Show a subnet's mechanisms: shares, a pending change and each one's incentive",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withChain(cmd, &f, func(ctx context.Context, c *comet.Client) error {
				info, err := c.Mechanisms(ctx, netuid)
				if err != nil {
					return err
				}
				if f.json {
					return writeJSON(cmd.OutOrStdout(), mechanismsOut{MechanismsInfo: info, Percent: sharePercents(info.Shares)})
				}
				out := cmd.OutOrStdout()
				fmt.Fprintf(out, "subnet %d runs %d mechanism(s)\n", netuid, info.Count())
				rows := [][]string{{"MECHANISM", "SHARE", "EMISSION", "NEURONS WITH INCENTIVE"}}
				for m, p := range sharePercents(info.Shares) {
					earning := 0
					for _, v := range info.Incentive[m] {
						if v > 0 {
							earning++
						}
					}
					rows = append(rows, []string{strconv.Itoa(m), strconv.FormatUint(uint64(info.Shares[m]), 10), strconv.FormatFloat(p, 'f', 2, 64) + "%", strconv.Itoa(earning)})
				}
				if err := table(out, rows); err != nil {
					return err
				}
				if info.PendingShares != nil {
					fmt.Fprintf(out, "pending: %d mechanisms (%s) from block %d\n", len(info.PendingShares), percentList(info.PendingShares), info.EffectiveBlock)
				}
				return nil
			})
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	netuidFlag(cmd, &netuid)
	return cmd
}

// specShares are a spec's mechanisms' shares, in mechanism order (none
// for a spec without mechanisms:).
func specShares(spec *subnet.Spec) []float64 {
	out := make([]float64, len(spec.Mechanisms))
	for i, m := range spec.Mechanisms {
		out[i] = m.Share
	}
	return out
}

// createdNetuid is the netuid a RegisterNetwork receipt says the subnet
// got.
func createdNetuid(rec *chainlink.Receipt) (uint16, error) {
	for _, e := range rec.Events {
		if e.Type == "network_registered" {
			n, err := strconv.ParseUint(e.Attrs["netuid"], 10, 16)
			if err == nil && n != 0 {
				return uint16(n), nil
			}
		}
	}
	return 0, errors.New("the chain did not say which netuid it gave the subnet")
}

// applyMechanisms sends a new subnet's mechanism shares (a spec's
// mechanisms:) as its owner; one mechanism is the default and sends
// nothing.
func (a *app) applyMechanisms(ctx context.Context, cmd *cobra.Command, c chainlink.Chain, owner *wallet.PrivateKey, rec *chainlink.Receipt, shares []float64, f *chainFlags) error {
	if len(shares) <= 1 {
		return nil
	}
	whole, err := mechanismShares(shares)
	if err != nil {
		return err
	}
	netuid, err := createdNetuid(rec)
	if err != nil {
		return fmt.Errorf("%w; set its mechanisms with subnets mechanisms set", err)
	}
	mrec, err := chainlink.NewSender(c, owner).Send(ctx, setMechanismsMsg(netuid, whole))
	if err != nil {
		return fmt.Errorf("subnet %d is open, but setting its %d mechanisms failed (set them with subnets mechanisms set --netuid %d --shares ...): %w", netuid, len(whole), netuid, err)
	}
	if !f.json {
		printScheduledTo(cmd, mrec, fmt.Sprintf("  %d mechanisms (%s)", len(whole), percentList(whole)))
	}
	return nil
}

// printScheduledTo is printScheduled on standard error, for a step of a
// longer command.
func printScheduledTo(cmd *cobra.Command, rec *chainlink.Receipt, what string) {
	for _, e := range rec.Events {
		if e.Type == "mechanisms_scheduled" {
			fmt.Fprintf(cmd.ErrOrStderr(), "%s take effect at block %s\n", what, e.Attrs["effective_block"])
		}
	}
}

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chainlink/comet"
)

func (a *app) weightsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "weights", Short: "Set, commit, reveal and show weights"}
	cmd.AddCommand(a.weightsSet(), a.weightsCommit(), a.weightsReveal(), a.weightsShow())
	return cmd
}

// weightArgs are the uids and weights given on the command line.
type weightArgs struct {
	netuid     uint16
	uids       string
	weights    string
	versionKey uint64
	// mechanism is the subnet's mechanism the weights are for.
	mechanism uint8
	// uidsFlag names the uids flag in errors ("--uids" if empty).
	uidsFlag string
}

func addWeightArgs(cmd *cobra.Command, w *weightArgs) {
	netuidFlag(cmd, &w.netuid)
	cmd.Flags().StringVar(&w.uids, "uids", "", "comma-separated uids, e.g. 1,2,5")
	cmd.Flags().StringVar(&w.weights, "weights", "", "comma-separated non-negative weights, same length, e.g. 0.5,0.3,0.2")
	cmd.Flags().Uint64Var(&w.versionKey, "version-key", 0, "weights version key: at least the subnet's weights_version_key (see subnets hyperparams)")
	cmd.Flags().Uint8Var(&w.mechanism, "mechanism", 0, "the subnet's incentive mechanism the weights are for, 0 to its count − 1 (see subnets mechanisms get)")
	cmd.MarkFlagRequired("uids")
	cmd.MarkFlagRequired("weights")
}

// parse turns the flags into u16 uids and values scaled so the largest
// weight is 65535, as the chain stores them.
func (w *weightArgs) parse() ([]uint16, []uint16, error) {
	uidsFlag := w.uidsFlag
	if uidsFlag == "" {
		uidsFlag = "--uids"
	}
	us, ws := strings.Split(w.uids, ","), strings.Split(w.weights, ",")
	if len(us) != len(ws) {
		return nil, nil, fmt.Errorf("%s has %d entries, --weights %d", uidsFlag, len(us), len(ws))
	}
	uids := make([]uint16, len(us))
	vals := make([]float64, len(ws))
	var max float64
	for i := range us {
		u, err := strconv.ParseUint(strings.TrimSpace(us[i]), 10, 16)
		if err != nil {
			return nil, nil, fmt.Errorf("%s entry %d %q: %w", uidsFlag, i+1, us[i], err)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(ws[i]), 64)
		if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
			return nil, nil, fmt.Errorf("--weights entry %d %q: want a finite non-negative number", i+1, ws[i])
		}
		uids[i], vals[i] = uint16(u), v
		max = math.Max(max, v)
	}
	if max == 0 {
		return nil, nil, fmt.Errorf("--weights are all zero")
	}
	out := make([]uint16, len(vals))
	for i, v := range vals {
		out[i] = uint16(math.Round(v / max * 65535))
	}
	return uids, out, nil
}

func u32s(v []uint16) []uint32 {
	out := make([]uint32, len(v))
	for i, x := range v {
		out[i] = uint32(x)
	}
	return out
}

func (a *app) weightsSet() *cobra.Command {
	var f chainFlags
	var k keyFlags
	var w weightArgs
	cmd := &cobra.Command{
		Use:   "set",
		Short: "Set the hotkey's weights on a subnet",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			uids, vals, err := w.parse()
			if err != nil {
				return usageError(err)
			}
			key, err := a.hotkey(&k)
			if err != nil {
				return err
			}
			msg := &chainpb.Msg{Sum: &chainpb.Msg_SetWeights{SetWeights: &chainpb.SetWeights{Netuid: uint32(w.netuid), Uids: u32s(uids), Values: u32s(vals), VersionKey: w.versionKey, Mechanism: uint32(w.mechanism)}}}
			return a.sendWith(cmd, &f, key, msg)
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	addHotkeyFlags(cmd, &k)
	addWeightArgs(cmd, &w)
	return cmd
}

func (a *app) weightsCommit() *cobra.Command {
	var f chainFlags
	var k keyFlags
	var w weightArgs
	var saltHex string
	cmd := &cobra.Command{
		Use:   "commit",
		Short: "Commit to weights without revealing them (subnets with commit-reveal)",
		Long: `Commit to weights; reveal them with "weights reveal" and the same uids, weights,
version key and salt in the reveal window (the commit-reveal interval after the
commit's). The salt is printed: keep it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			uids, vals, err := w.parse()
			if err != nil {
				return usageError(err)
			}
			salt, err := parseSalt(saltHex)
			if err != nil {
				return err
			}
			key, err := a.hotkey(&k)
			if err != nil {
				return err
			}
			hash := chain.CommitHashMechanism(key.PublicKey().Address(), w.netuid, w.mechanism, uids, vals, salt, w.versionKey)
			msg := &chainpb.Msg{Sum: &chainpb.Msg_CommitWeights{CommitWeights: &chainpb.CommitWeights{Netuid: uint32(w.netuid), Hash: hash[:], Mechanism: uint32(w.mechanism)}}}
			return a.withChain(cmd, &f, func(ctx context.Context, c *comet.Client) error {
				rec, err := a.send(ctx, cmd.OutOrStdout(), c, key, msg, &f)
				if err != nil {
					return err
				}
				sub, err := c.Subnet(ctx, w.netuid)
				if err == nil && !f.json {
					first, last := chain.RevealWindow(rec.Height, sub.Params.CommitRevealInterval)
					fmt.Fprintf(cmd.OutOrStdout(), "salt %x — reveal between blocks %d and %d\n", salt, first, last)
				}
				return nil
			})
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	addHotkeyFlags(cmd, &k)
	addWeightArgs(cmd, &w)
	cmd.Flags().StringVar(&saltHex, "salt", "", "salt in hex (default: 16 random bytes)")
	return cmd
}

func parseSalt(s string) ([]byte, error) {
	if s == "" {
		salt := make([]byte, 16)
		if _, err := rand.Read(salt); err != nil {
			return nil, err
		}
		return salt, nil
	}
	salt, err := hex.DecodeString(s)
	if err != nil || len(salt) > 64 {
		return nil, usageError(fmt.Errorf("--salt: want at most 64 bytes of hex"))
	}
	return salt, nil
}

func (a *app) weightsReveal() *cobra.Command {
	var f chainFlags
	var k keyFlags
	var w weightArgs
	var saltHex string
	cmd := &cobra.Command{
		Use:   "reveal",
		Short: "Reveal committed weights",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			uids, vals, err := w.parse()
			if err != nil {
				return usageError(err)
			}
			if saltHex == "" {
				return usageError(fmt.Errorf("--salt is required: the one printed by weights commit"))
			}
			salt, err := parseSalt(saltHex)
			if err != nil {
				return err
			}
			key, err := a.hotkey(&k)
			if err != nil {
				return err
			}
			msg := &chainpb.Msg{Sum: &chainpb.Msg_RevealWeights{RevealWeights: &chainpb.RevealWeights{Netuid: uint32(w.netuid), Uids: u32s(uids), Values: u32s(vals), Salt: salt, VersionKey: w.versionKey, Mechanism: uint32(w.mechanism)}}}
			return a.sendWith(cmd, &f, key, msg)
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	addHotkeyFlags(cmd, &k)
	addWeightArgs(cmd, &w)
	cmd.Flags().StringVar(&saltHex, "salt", "", "the salt printed by weights commit (hex)")
	return cmd
}

func (a *app) weightsShow() *cobra.Command {
	var f chainFlags
	var netuid uint16
	var bonds bool
	var mechanism uint8
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show a subnet's weights (or bonds) as sparse rows",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withChain(cmd, &f, func(ctx context.Context, c *comet.Client) error {
				path := "/weights/"
				if bonds {
					path = "/bonds/"
				}
				path += strconv.Itoa(int(netuid))
				if cmd.Flags().Changed("mechanism") {
					path += "/" + strconv.Itoa(int(mechanism))
				}
				var rows [][]chain.Entry
				if err := c.Query(ctx, path, &rows); err != nil {
					return err
				}
				if f.json {
					return writeJSON(cmd.OutOrStdout(), rows)
				}
				t := [][]string{{"UID", "ENTRIES (uid:value)"}}
				for i, r := range rows {
					var parts []string
					for _, e := range r {
						parts = append(parts, fmt.Sprintf("%d:%d", e.UID, e.Value))
					}
					t = append(t, []string{strconv.Itoa(i), strings.Join(parts, " ")})
				}
				return table(cmd.OutOrStdout(), t)
			})
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	netuidFlag(cmd, &netuid)
	cmd.Flags().BoolVar(&bonds, "bonds", false, "show bonds instead of weights")
	cmd.Flags().Uint8Var(&mechanism, "mechanism", 0, "show this incentive mechanism's weights (or bonds); default mechanism 0")
	return cmd
}

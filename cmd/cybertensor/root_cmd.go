package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chainlink/comet"
	"github.com/cybertensor/cybertensor/wallet"
)

func (a *app) rootNetworkCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "root",
		Short: "The root network: its members' weights over subnets split block emission",
		Long: `The root network (netuid 0) decides how block emission is split between subnets.
Its members are hotkeys with stake; each sets weights over subnets, and at every
root epoch the chain turns the stake-weighted weights into each subnet's share
(shown by "subnets list" and the metagraph). New weights count from the next root
epoch.`,
	}
	cmd.AddCommand(a.rootRegister(), a.rootWeights(), a.rootGetWeights(), a.rootList())
	return cmd
}

func (a *app) rootRegister() *cobra.Command {
	var f chainFlags
	var k keyFlags
	cmd := &cobra.Command{
		Use:   "register",
		Short: "Put the hotkey on the root network (signed by its coldkey; a full root network takes it only with more stake than its lowest member)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hot, err := a.hotkeyAddress(k.wallet, k.hotkey)
			if err != nil {
				return err
			}
			key, err := a.coldkey(&k)
			if err != nil {
				return err
			}
			msg := &chainpb.Msg{Sum: &chainpb.Msg_RootRegister{RootRegister: &chainpb.RootRegister{Hotkey: hot[:]}}}
			return a.sendWith(cmd, &f, key, msg)
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	addColdkeyFlags(cmd, &k)
	cmd.Flags().StringVar(&k.hotkey, "hotkey", wallet.DefaultHotkey, "hotkey: a hotkey name of the wallet, or an address")
	return cmd
}

func (a *app) rootWeights() *cobra.Command {
	var f chainFlags
	var k keyFlags
	w := weightArgs{uidsFlag: "--netuids"}
	var netuids, values []uint16
	cmd := &cobra.Command{
		Use:   "weights",
		Short: "Set the root member's weights over subnets (signed by the hotkey)",
		Long: `Set the root member's weights over subnets, e.g. --netuids 1,2 --weights 0.7,0.3.
Weights are normalized as "weights set" does (the largest becomes 65535); each
subnet's share of block emission follows from every member's weights and stake at
the next root epoch.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := a.hotkey(&k)
			if err != nil {
				return err
			}
			msg := &chainpb.Msg{Sum: &chainpb.Msg_SetWeights{SetWeights: &chainpb.SetWeights{Netuid: uint32(chain.RootNetuid), Uids: u32s(netuids), Values: u32s(values), VersionKey: w.versionKey}}}
			return a.sendWith(cmd, &f, key, msg)
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	addHotkeyFlags(cmd, &k)
	cmd.Flags().StringVar(&w.uids, "netuids", "", "comma-separated subnets, e.g. 1,2")
	cmd.Flags().StringVar(&w.weights, "weights", "", "comma-separated non-negative weights, same length, e.g. 0.7,0.3")
	cmd.Flags().Uint64Var(&w.versionKey, "version-key", 0, "weights version key: at least the root network's weights_version_key")
	cmd.MarkFlagRequired("netuids")
	cmd.MarkFlagRequired("weights")
	addCheck(cmd, func() (err error) {
		netuids, values, err = w.parse()
		if err != nil {
			return err
		}
		for _, n := range netuids {
			if n == chain.RootNetuid {
				return errors.New("--netuids: 0 is the root network itself; name subnets (1 and up)")
			}
		}
		return nil
	})
	return cmd
}

// rootWeight is one root member's weight on a subnet: the stored u16 and
// its fraction of the member's weights.
type rootWeight struct {
	Netuid uint16  `json:"netuid"`
	Value  uint16  `json:"value"`
	Share  float64 `json:"share"`
}

// rootMember is one root network member as the root commands print it.
type rootMember struct {
	UID     uint16       `json:"uid"`
	Hotkey  string       `json:"hotkey"`
	Coldkey string       `json:"coldkey"`
	Stake   uint64       `json:"stake"`
	Weights []rootWeight `json:"weights"`
}

// rootMembers reads the root network's members with their weights.
func rootMembers(ctx context.Context, c *comet.Client) ([]rootMember, error) {
	m, err := c.Metagraph(ctx, chain.RootNetuid, false)
	if err != nil {
		return nil, err
	}
	out := make([]rootMember, 0, m.N)
	for i := range m.N {
		r := rootMember{UID: m.UIDs[i], Hotkey: m.Hotkeys[i].String(), Coldkey: m.Coldkeys[i].String(), Stake: m.Stake[i], Weights: []rootWeight{}}
		var sum uint64
		for _, e := range m.Weights[i] {
			sum += uint64(e.Value)
		}
		for _, e := range m.Weights[i] {
			r.Weights = append(r.Weights, rootWeight{Netuid: e.UID, Value: e.Value, Share: float64(e.Value) / float64(sum)})
		}
		out = append(out, r)
	}
	return out, nil
}

func (a *app) rootGetWeights() *cobra.Command {
	var f chainFlags
	var k keyFlags
	cmd := &cobra.Command{
		Use:   "get-weights",
		Short: "Show each root member's weights over subnets (or one member's, with --hotkey)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var only string
			if k.hotkey != "" {
				hk, err := a.hotkeyAddress(k.wallet, k.hotkey)
				if err != nil {
					return err
				}
				only = hk.String()
			}
			return a.withChain(cmd, &f, func(ctx context.Context, c *comet.Client) error {
				members, err := rootMembers(ctx, c)
				if err != nil {
					return err
				}
				if only != "" {
					var kept []rootMember
					for _, m := range members {
						if m.Hotkey == only {
							kept = append(kept, m)
						}
					}
					if len(kept) == 0 {
						return fmt.Errorf("%s is not on the root network (register it with: cybertensor root register)", only)
					}
					members = kept
				}
				if f.json {
					return writeJSON(cmd.OutOrStdout(), members)
				}
				rows := [][]string{{"UID", "HOTKEY", "WEIGHTS (netuid:share)"}}
				for _, m := range members {
					var parts []string
					for _, w := range m.Weights {
						parts = append(parts, fmt.Sprintf("%d:%.4f", w.Netuid, w.Share))
					}
					rows = append(rows, []string{strconv.Itoa(int(m.UID)), m.Hotkey, strings.Join(parts, " ")})
				}
				return table(cmd.OutOrStdout(), rows)
			})
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	cmd.Flags().StringVar(&k.wallet, "wallet", "default", "wallet of the hotkey (when --hotkey is a name)")
	cmd.Flags().StringVar(&k.hotkey, "hotkey", "", "only this member: an address, or a hotkey name of the wallet (default: every member)")
	return cmd
}

func (a *app) rootList() *cobra.Command {
	var f chainFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the root network's members: uid, hotkey, stake and how many subnets each weights",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withChain(cmd, &f, func(ctx context.Context, c *comet.Client) error {
				members, err := rootMembers(ctx, c)
				if err != nil {
					return err
				}
				if f.json {
					return writeJSON(cmd.OutOrStdout(), members)
				}
				rows := [][]string{{"UID", "HOTKEY", "COLDKEY", "STAKE", "WEIGHTS"}}
				for _, m := range members {
					rows = append(rows, []string{strconv.Itoa(int(m.UID)), m.Hotkey, m.Coldkey, f.amount(m.Stake), strconv.Itoa(len(m.Weights))})
				}
				return table(cmd.OutOrStdout(), rows)
			})
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	return cmd
}

// blockEmission reads the chain's block_emission.
func blockEmission(ctx context.Context, c *comet.Client) (uint64, error) {
	var g chain.Globals
	if err := c.Query(ctx, "/globals", &g); err != nil {
		return 0, err
	}
	return g.BlockEmission, nil
}

// emissionPercent is a subnet's share of block emission as the root epoch
// set it, in percent.
func emissionPercent(perBlock, blockEmission uint64) float64 {
	if blockEmission == 0 {
		return 0
	}
	return float64(perBlock) / float64(blockEmission) * 100
}

// subnetOut is a subnet as "subnets list --json" prints it: the chain's
// record and its share of block emission.
type subnetOut struct {
	chain.SubnetInfo
	EmissionPercent float64 `json:"emission_percent"`
}

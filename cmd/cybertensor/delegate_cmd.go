package main

import (
	"context"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chainlink/comet"
	"github.com/cybertensor/cybertensor/wallet"
)

// returnHelp says what the return per 1,000 tokens is, for the help of
// the commands that print it.
const returnHelp = `RETURN/1000 is what 1,000 tokens staked on the delegate through its last
epoch payouts (at most 16, EPOCHS of them) earned, net of its take, without
compounding: the sum over the payouts of paid × 1000 tokens / stake, where
paid is the validator emission the delegate paid its stakers in that epoch
and stake its total stake just before.`

// delegateSubcommands are the delegate command's subcommands: the take
// and the delegates' list.
func (a *app) delegateSubcommands() []*cobra.Command {
	return []*cobra.Command{a.delegateSetTake(), a.delegateGetTake(), a.delegateList(), a.delegateMine()}
}

// parseTakePercent reads a take in percent with at most two decimals,
// e.g. "9.5" or "9.5%", into a u16 share of 65535 (rounded to nearest).
func parseTakePercent(s string) (uint16, error) {
	t := strings.TrimSuffix(strings.TrimSpace(s), "%")
	r, ok := new(big.Rat).SetString(t)
	if !ok || strings.ContainsAny(t, "eE/") || r.Sign() < 0 || r.Cmp(big.NewRat(100, 1)) > 0 {
		return 0, fmt.Errorf("--take %q: want a percentage from 0 to 100, e.g. 9.5", s)
	}
	r.Mul(r, big.NewRat(100, 1))
	if !r.IsInt() {
		return 0, fmt.Errorf("--take %q: at most 2 decimal places", s)
	}
	centi := r.Num().Uint64() // 0..10000
	return uint16((centi*65535 + 5000) / 10000), nil
}

// takePercent prints a u16 take as a percentage with two decimals.
func takePercent(take uint16) string {
	centi := (uint64(take)*10000 + 65535/2) / 65535
	return fmt.Sprintf("%d.%02d%%", centi/100, centi%100)
}

// sharePercent prints part/total as a percentage with two decimals.
func sharePercent(part, total uint64) string {
	if total == 0 {
		return "0.00%"
	}
	v := new(big.Int).Mul(new(big.Int).SetUint64(part), big.NewInt(10000))
	centi := v.Quo(v, new(big.Int).SetUint64(total)).Uint64()
	return fmt.Sprintf("%d.%02d%%", centi/100, centi%100)
}

// returnOn is what stake earns at a return per 1,000 tokens:
// stake × ret / (1000 tokens), in base units.
func returnOn(stake, ret uint64) uint64 {
	v := new(big.Int).Mul(new(big.Int).SetUint64(stake), new(big.Int).SetUint64(ret))
	v.Quo(v, big.NewInt(1000*chain.BaseUnitsPerToken))
	if !v.IsUint64() {
		return ^uint64(0)
	}
	return v.Uint64()
}

func (a *app) delegateSetTake() *cobra.Command {
	var f chainFlags
	var k keyFlags
	var percent string
	var raw int
	var take uint16
	cmd := &cobra.Command{
		Use:   "set-take",
		Short: "Set a delegate hotkey's take (signed by its coldkey): lower at any time, raise once per take_rate_limit",
		Long: `Set the take of a delegate hotkey: the share of its validator emission it
keeps before paying the rest to its stakers. Give it in percent with at most
two decimals (--take 9.5) or as a share of 65535 (--take-raw 6226). It must lie
between the chain's min_take and max_take (default 0% and 18%). Lowering
applies at once and at any block; a raise is refused until take_rate_limit
blocks have passed since the delegate opened or last raised its take
("delegate get-take" says when).`,
		Example: `  cybertensor delegate set-take --wallet alice --hotkey default --take 9.5`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hot, err := a.hotkeyAddress(k.wallet, k.hotkey)
			if err != nil {
				return err
			}
			key, err := a.coldkey(&k)
			if err != nil {
				return err
			}
			msg := &chainpb.Msg{Sum: &chainpb.Msg_SetTake{SetTake: &chainpb.SetTake{Hotkey: hot[:], Take: uint32(take)}}}
			return a.sendWith(cmd, &f, key, msg)
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	addColdkeyFlags(cmd, &k)
	cmd.Flags().StringVar(&k.hotkey, "hotkey", wallet.DefaultHotkey, "the delegate: a hotkey name in the wallet, or its address")
	cmd.Flags().StringVar(&percent, "take", "", "the take in percent, at most 2 decimals, e.g. 9.5")
	cmd.Flags().IntVar(&raw, "take-raw", 0, "the take as a share of 65535 (0 to 65535), instead of --take")
	addCheck(cmd, func() (err error) {
		rawSet := cmd.Flags().Changed("take-raw")
		switch {
		case percent != "" && rawSet:
			return fmt.Errorf("give either --take or --take-raw, not both")
		case percent != "":
			take, err = parseTakePercent(percent)
			return err
		case rawSet:
			if raw < 0 || raw > 65535 {
				return fmt.Errorf("--take-raw %d: want a share of 65535, from 0 to 65535", raw)
			}
			take = uint16(raw)
			return nil
		default:
			return fmt.Errorf("give the new take with --take PERCENT or --take-raw SHARE")
		}
	})
	return cmd
}

// takeOut is what "delegate get-take" prints.
type takeOut struct {
	Hotkey      string `json:"hotkey"`
	Take        uint16 `json:"take"`
	TakePercent string `json:"take_percent"`
	MinTake     uint64 `json:"min_take"`
	MaxTake     uint64 `json:"max_take"`
	// TakeRaisedAt is the block the delegate opened or last raised its
	// take; NextTakeRaise the first block it may raise it again (0: any).
	TakeRaisedAt  uint64 `json:"take_raised_at"`
	NextTakeRaise uint64 `json:"next_take_raise"`
	Block         uint64 `json:"block"`
}

func (a *app) delegateGetTake() *cobra.Command {
	var f chainFlags
	var k keyFlags
	cmd := &cobra.Command{
		Use:   "get-take",
		Short: "Show a delegate's take, the chain's bounds and when it may next be raised",
		Example: `  cybertensor delegate get-take --hotkey ct1…
  cybertensor delegate get-take --wallet alice --hotkey default`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hot, err := a.hotkeyAddress(k.wallet, k.hotkey)
			if err != nil {
				return err
			}
			return a.withChain(cmd, &f, func(ctx context.Context, c *comet.Client) error {
				d, err := c.Delegate(ctx, hot)
				if isNotFound(err) {
					return fmt.Errorf("hotkey %s is not a delegate (open it with: cybertensor delegate --hotkey NAME)", hot)
				}
				if err != nil {
					return err
				}
				var g chain.Globals
				if err := c.Query(ctx, "/globals", &g); err != nil {
					return err
				}
				head, err := c.Head(ctx)
				if err != nil {
					return err
				}
				o := takeOut{Hotkey: hot.String(), Take: d.Take, TakePercent: takePercent(d.Take), MinTake: g.MinTake, MaxTake: g.MaxTake,
					TakeRaisedAt: d.TakeRaisedAt, NextTakeRaise: d.NextTakeRaise, Block: head.Height}
				if f.json {
					return writeJSON(cmd.OutOrStdout(), o)
				}
				next := "at any block"
				if o.NextTakeRaise > o.Block {
					next = fmt.Sprintf("from block %d (in %d blocks)", o.NextTakeRaise, o.NextTakeRaise-o.Block)
				}
				return table(cmd.OutOrStdout(), [][]string{
					{"hotkey", o.Hotkey},
					{"take", fmt.Sprintf("%s (%d of 65535)", o.TakePercent, o.Take)},
					{"bounds", fmt.Sprintf("%s to %s", takePercent(uint16(min(o.MinTake, 65535))), takePercent(uint16(min(o.MaxTake, 65535))))},
					{"raised at", "block " + strconv.FormatUint(o.TakeRaisedAt, 10)},
					{"next raise", next},
					{"lower", "at any block"},
				})
			})
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	cmd.Flags().StringVar(&k.wallet, "wallet", "default", "wallet of the hotkey (when --hotkey is a name)")
	cmd.Flags().StringVar(&k.hotkey, "hotkey", wallet.DefaultHotkey, "the delegate: an address, or a hotkey name of the wallet")
	return cmd
}

// delegateOut is one delegate as "delegate list" prints it.
type delegateOut struct {
	Hotkey        string   `json:"hotkey"`
	Owner         string   `json:"owner"`
	Take          uint16   `json:"take"`
	TakePercent   string   `json:"take_percent"`
	TotalStake    uint64   `json:"total_stake"`
	Nominators    int      `json:"nominators"`
	ReturnPer1000 uint64   `json:"return_per_1000"`
	ReturnEpochs  int      `json:"return_epochs"`
	Netuids       []uint16 `json:"netuids"`
}

func (a *app) delegateList() *cobra.Command {
	var f chainFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List every delegate: take, total stake, nominators and return per 1,000 tokens",
		Long: `List every delegate: its take, total stake, number of nominators (coldkeys
with stake on it, its owner's included) and return per 1,000 tokens.

` + returnHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withChain(cmd, &f, func(ctx context.Context, c *comet.Client) error {
				list, err := c.Delegates(ctx)
				if err != nil {
					return err
				}
				out := make([]delegateOut, 0, len(list))
				for _, d := range list {
					out = append(out, delegateOut{
						Hotkey: d.Hotkey.String(), Owner: d.Owner.String(), Take: d.Take, TakePercent: takePercent(d.Take),
						TotalStake: d.Total, Nominators: d.Nominators, ReturnPer1000: d.ReturnPer1000, ReturnEpochs: len(d.Payouts),
						Netuids: d.Netuids,
					})
				}
				if f.json {
					return writeJSON(cmd.OutOrStdout(), out)
				}
				rows := [][]string{{"HOTKEY", "TAKE", "TOTAL STAKE", "NOMINATORS", "RETURN/1000", "EPOCHS", "SUBNETS"}}
				for _, d := range out {
					rows = append(rows, []string{d.Hotkey, d.TakePercent, f.amount(d.TotalStake), strconv.Itoa(d.Nominators),
						f.amount(d.ReturnPer1000), strconv.Itoa(d.ReturnEpochs), fmt.Sprint(d.Netuids)})
				}
				return table(cmd.OutOrStdout(), rows)
			})
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	return cmd
}

// delegationOut is one of the wallet's stakes as "delegate mine" prints it.
type delegationOut struct {
	Hotkey        string `json:"hotkey"`
	Owner         string `json:"owner"`
	Stake         uint64 `json:"stake"`
	TotalStake    uint64 `json:"total_stake"`
	SharePercent  string `json:"share_percent"`
	Take          uint16 `json:"take"`
	TakePercent   string `json:"take_percent"`
	ReturnPer1000 uint64 `json:"return_per_1000"`
	ReturnEpochs  int    `json:"return_epochs"`
	// ReturnOnStake is what the stake earns at ReturnPer1000 over the same
	// epochs: stake × return_per_1000 / 1000 tokens.
	ReturnOnStake uint64 `json:"return_on_stake"`
}

func (a *app) delegateMine() *cobra.Command {
	var f chainFlags
	var walletName string
	cmd := &cobra.Command{
		Use:   "mine",
		Short: "Show the wallet coldkey's stake on each delegate, its share, the take and the recent return",
		Long: `Show the wallet coldkey's stake on each delegate: the stake, its share of the
delegate's total, the delegate's take, its return per 1,000 tokens and what
the stake earns at that return (YOURS). Reads no key: the coldkey's address
comes from the wallet's public side.

` + returnHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cold, err := a.coldkeyAddress(walletName)
			if err != nil {
				return err
			}
			return a.withChain(cmd, &f, func(ctx context.Context, c *comet.Client) error {
				list, err := c.Delegations(ctx, cold)
				if err != nil {
					return err
				}
				out := make([]delegationOut, 0, len(list))
				for _, d := range list {
					out = append(out, delegationOut{
						Hotkey: d.Hotkey.String(), Owner: d.Owner.String(), Stake: d.Stake, TotalStake: d.TotalStake,
						SharePercent: sharePercent(d.Stake, d.TotalStake), Take: d.Take, TakePercent: takePercent(d.Take),
						ReturnPer1000: d.ReturnPer1000, ReturnEpochs: d.ReturnEpochs, ReturnOnStake: returnOn(d.Stake, d.ReturnPer1000),
					})
				}
				if f.json {
					return writeJSON(cmd.OutOrStdout(), map[string]any{"coldkey": cold.String(), "delegations": out})
				}
				fmt.Fprintf(cmd.OutOrStdout(), "coldkey %s\n", cold)
				if len(out) == 0 {
					fmt.Fprintln(cmd.OutOrStdout(), "no stake on any delegate (stake with: cybertensor stake add --hotkey DELEGATE_ADDRESS --amount TOKENS)")
					return nil
				}
				rows := [][]string{{"DELEGATE", "YOUR STAKE", "SHARE", "TAKE", "RETURN/1000", "EPOCHS", "YOURS"}}
				for _, d := range out {
					rows = append(rows, []string{d.Hotkey, f.amount(d.Stake), d.SharePercent, d.TakePercent,
						f.amount(d.ReturnPer1000), strconv.Itoa(d.ReturnEpochs), f.amount(d.ReturnOnStake)})
				}
				return table(cmd.OutOrStdout(), rows)
			})
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	cmd.Flags().StringVar(&walletName, "wallet", "default", "wallet whose coldkey's delegations to show")
	return cmd
}

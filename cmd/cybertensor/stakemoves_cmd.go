package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chainlink/comet"
	"github.com/cybertensor/cybertensor/wallet"
)

// This file holds "stake move", "stake transfer", "wallet swap-hotkey",
// "wallet overview" and "wallet inspect".

// positiveAmount parses --amount and refuses 0.
func positiveAmount(s string) (uint64, error) {
	amt, err := parseAmount(s)
	if err != nil {
		return 0, err
	}
	if amt == 0 {
		return 0, fmt.Errorf("--amount %s: move a positive amount", s)
	}
	return amt, nil
}

func (a *app) stakeMoveCommand() *cobra.Command {
	var f chainFlags
	var k keyFlags
	var from, to, amount string
	cmd := &cobra.Command{
		Use:   "move",
		Short: "Move stake from one hotkey to another, both staked by the wallet's coldkey",
		Long: `Move some of the coldkey's stake from one hotkey to another without unstaking:
the balance does not change. The destination must be one of the coldkey's own
hotkeys or a delegate. --from and --to take a hotkey name of the wallet or a
hotkey address. Like stake add and remove, it counts against the chain's
tx_rate_limit.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			amt, err := positiveAmount(amount)
			if err != nil {
				return usageError(err)
			}
			origin, err := a.hotkeyFlag("--from", k.wallet, from)
			if err != nil {
				return err
			}
			dest, err := a.hotkeyFlag("--to", k.wallet, to)
			if err != nil {
				return err
			}
			if origin == dest {
				return usageError(fmt.Errorf("--from and --to are the same hotkey %s", origin))
			}
			key, err := a.coldkey(&k)
			if err != nil {
				return err
			}
			msg := &chainpb.Msg{Sum: &chainpb.Msg_MoveStake{MoveStake: &chainpb.MoveStake{OriginHotkey: origin[:], DestinationHotkey: dest[:], Amount: amt}}}
			return a.sendWith(cmd, &f, key, msg)
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	addColdkeyFlags(cmd, &k)
	cmd.Flags().StringVar(&from, "from", "", "hotkey to move stake from: a name in the wallet or an address")
	cmd.Flags().StringVar(&to, "to", "", "hotkey to move stake to: a name in the wallet or an address (a delegate's)")
	cmd.Flags().StringVar(&amount, "amount", "", "tokens, e.g. 10 or 0.5")
	for _, n := range []string{"from", "to", "amount"} {
		cmd.MarkFlagRequired(n)
	}
	return cmd
}

// hotkeyFlag resolves a hotkey flag (a name in the wallet or an address);
// a name the wallet does not have is bad input.
func (a *app) hotkeyFlag(flag, walletName, v string) (wallet.Address, error) {
	addr, err := a.hotkeyAddress(walletName, v)
	if errors.Is(err, wallet.ErrNotFound) {
		return addr, usageError(fmt.Errorf("%s %q is neither a hotkey of wallet %q nor an address", flag, v, walletName))
	}
	return addr, err
}

// transferDestination resolves --to of stake transfer: an address, or the
// name of a wallet in this home (its coldkey).
func (a *app) transferDestination(to string) (wallet.Address, error) {
	if addr, _, err := wallet.ParseAddress(to); err == nil {
		return addr, nil
	}
	s, err := a.store()
	if err != nil {
		return wallet.Address{}, err
	}
	info, err := s.Info(to)
	if err != nil {
		return wallet.Address{}, usageError(fmt.Errorf("--to %q is neither an address nor a wallet in %s", to, a.home))
	}
	addr, _, err := wallet.ParseAddress(info.Coldkey.Address)
	return addr, err
}

func (a *app) stakeTransferCommand() *cobra.Command {
	var f chainFlags
	var k keyFlags
	var to, amount string
	cmd := &cobra.Command{
		Use:   "transfer",
		Short: "Give some of the coldkey's stake on a hotkey to another coldkey",
		Long: `Give some of the wallet coldkey's stake on a hotkey to another coldkey, which
then holds it on the same hotkey. The receiver must be able to stake on the
hotkey itself: the hotkey is a delegate, or the receiver owns it. --to takes an
address or the name of another wallet in this home. It counts against the
chain's tx_rate_limit.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			amt, err := positiveAmount(amount)
			if err != nil {
				return usageError(err)
			}
			dest, err := a.transferDestination(to)
			if err != nil {
				return err
			}
			hot, err := a.hotkeyFlag("--hotkey", k.wallet, k.hotkey)
			if err != nil {
				return err
			}
			key, err := a.coldkey(&k)
			if err != nil {
				return err
			}
			if key.PublicKey().Address() == dest {
				return usageError(fmt.Errorf("--to %s is this wallet's own coldkey", dest))
			}
			msg := &chainpb.Msg{Sum: &chainpb.Msg_TransferStake{TransferStake: &chainpb.TransferStake{DestinationColdkey: dest[:], Hotkey: hot[:], Amount: amt}}}
			return a.sendWith(cmd, &f, key, msg)
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	addColdkeyFlags(cmd, &k)
	cmd.Flags().StringVar(&k.hotkey, "hotkey", wallet.DefaultHotkey, "hotkey the stake is on: a name in the wallet or an address")
	cmd.Flags().StringVar(&to, "to", "", "coldkey to give the stake to: an address or a wallet name")
	cmd.Flags().StringVar(&amount, "amount", "", "tokens, e.g. 10 or 0.5")
	cmd.MarkFlagRequired("to")
	cmd.MarkFlagRequired("amount")
	return cmd
}

// swapOut is what wallet swap-hotkey prints with --json.
type swapOut struct {
	OldHotkey string `json:"old_hotkey"`
	OldName   string `json:"old_name"`
	NewHotkey string `json:"new_hotkey"`
	NewName   string `json:"new_name"`
	// Created is set when the command created the new hotkey; Mnemonic
	// is then its mnemonic, shown once.
	Created  bool      `json:"created"`
	Mnemonic string    `json:"mnemonic,omitempty"`
	Fee      uint64    `json:"fee"`
	Tx       txOutcome `json:"tx"`
}

func (a *app) walletSwapHotkey() *cobra.Command {
	var f chainFlags
	var k keyFlags
	var newName string
	cmd := &cobra.Command{
		Use:   "swap-hotkey",
		Short: "Move a hotkey's registrations, stake and delegation to a new hotkey, for the chain's swap fee",
		Long: `Move everything a hotkey has on the chain to a new hotkey: its uid on every
subnet and the root network (weights, bonds, scores, commitments), the stake of
every coldkey on it, and its delegation and take. The old hotkey is left with
nothing. The axons are cleared: an axon is the old key's libp2p identity, so
restart the miner or validator with --hotkey NEW and it serves again.

The coldkey signs and pays the chain's hotkey_swap_cost, which is burned, and
the swap counts against the chain's tx_rate_limit. --new-hotkey names a hotkey
of the wallet; if the wallet has none of that name it is created first (its
mnemonic is printed once) and kept even if the chain refuses the swap. The
chain refuses a new hotkey it has seen before (registered or staked on).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := a.store()
			if err != nil {
				return err
			}
			old, err := a.hotkeyFlag("--hotkey", k.wallet, k.hotkey)
			if err != nil {
				return err
			}
			nf, err := s.HotkeyFile(k.wallet, newName)
			create := errors.Is(err, wallet.ErrNotFound)
			if err != nil && !create {
				return walletError(err)
			}
			if !create {
				pub, err := nf.Public()
				if err != nil {
					return err
				}
				if pub.Address() == old {
					return usageError(fmt.Errorf("--new-hotkey %q is the hotkey being swapped", newName))
				}
			}
			key, err := a.coldkey(&k)
			if err != nil {
				return err
			}
			out := swapOut{OldHotkey: old.String(), OldName: k.hotkey, NewName: newName, Created: create}
			if _, _, err := wallet.ParseAddress(k.hotkey); err == nil {
				out.OldName = ""
			}
			return a.withChain(cmd, &f, func(ctx context.Context, c *comet.Client) error {
				var g chain.Globals
				if err := c.Query(ctx, "/globals", &g); err != nil {
					return err
				}
				out.Fee = g.HotkeySwapCost
				if create {
					mnemonic, ki, err := s.NewHotkey(k.wallet, newName, 12, nil, false)
					if err != nil {
						return walletError(err)
					}
					out.Mnemonic = mnemonic
					if !f.json {
						fmt.Fprintf(cmd.OutOrStdout(), "Created hotkey %q in wallet %q: %s\nmnemonic (shown once): %s\n\n", newName, k.wallet, ki.Address, mnemonic)
					}
				}
				nf, err := s.HotkeyFile(k.wallet, newName)
				if err != nil {
					return walletError(err)
				}
				pub, err := nf.Public()
				if err != nil {
					return err
				}
				nw := pub.Address()
				out.NewHotkey = nw.String()
				if !f.json {
					fmt.Fprintf(cmd.OutOrStdout(), "swapping hotkey %s to %s (%q) for a fee of %s\n", old, nw, newName, f.amountUnit(out.Fee))
				}
				msg := &chainpb.Msg{Sum: &chainpb.Msg_SwapHotkey{SwapHotkey: &chainpb.SwapHotkey{OldHotkey: old[:], NewHotkey: nw[:]}}}
				w := cmd.OutOrStdout()
				if f.json {
					w = io.Discard
				}
				rec, err := a.send(ctx, w, c, key, msg, &f)
				if err != nil {
					return err
				}
				out.Tx = txOutcome{TxHash: strings.ToUpper(fmt.Sprintf("%x", rec.TxHash[:])), Height: rec.Height, Signer: key.PublicKey().Address().String(), Events: rec.Events}
				if f.json {
					return writeJSON(cmd.OutOrStdout(), out)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "new hotkey %s; run neurons with --hotkey %s\n", nw, newName)
				return nil
			})
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	addWalletFlag(cmd, &k.wallet, "wallet whose coldkey owns the hotkey and signs")
	cmd.Flags().StringVar(&k.passwordFile, "password-file", "", "read the coldkey password from this file")
	cmd.Flags().StringVar(&k.hotkey, "hotkey", wallet.DefaultHotkey, "hotkey to swap out: a name in the wallet or an address")
	cmd.Flags().StringVar(&newName, "new-hotkey", "", "name of the new hotkey in the wallet (created if absent)")
	cmd.MarkFlagRequired("new-hotkey")
	return cmd
}

// amountUnit is amount with its unit: "0.1 tokens", or "100000000 base
// units" with --raw.
func (f *chainFlags) amountUnit(v uint64) string {
	if f.raw {
		return strconv.FormatUint(v, 10) + " base units"
	}
	return formatAmount(v) + " tokens"
}

// walletChainInfo reads a wallet's public side for the read commands:
// its coldkey address and its hotkey names by address.
func (a *app) walletChainInfo(name string) (wallet.Address, map[wallet.Address]string, error) {
	s, err := a.store()
	if err != nil {
		return wallet.Address{}, nil, err
	}
	info, err := s.Info(name)
	if err != nil {
		return wallet.Address{}, nil, walletError(err)
	}
	cold, _, err := wallet.ParseAddress(info.Coldkey.Address)
	if err != nil {
		return wallet.Address{}, nil, err
	}
	names := map[wallet.Address]string{}
	for _, h := range info.Hotkeys {
		if addr, _, err := wallet.ParseAddress(h.Address); err == nil {
			names[addr] = h.Name
		}
	}
	return cold, names, nil
}

// overviewHotkey is one hotkey in wallet overview's output.
type overviewHotkey struct {
	// Name is the hotkey's name in the wallet; empty for a hotkey the
	// coldkey owns on the chain whose key is not in this wallet.
	Name string `json:"name"`
	chain.OwnedHotkey
}

func (a *app) walletOverview() *cobra.Command {
	var f chainFlags
	var name string
	cmd := &cobra.Command{
		Use:   "overview",
		Short: "Show every hotkey of the wallet on every subnet: uid, stake, emission, axon, last update",
		Long: `Show the wallet coldkey's balance and every hotkey it owns on the chain, with,
for each subnet it is registered on (netuid 0 is the root network), its uid,
stake, last epoch's emission, axon and the block of its last weights. Hotkeys of
the wallet that the chain does not know are listed too. No password is needed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cold, names, err := a.walletChainInfo(name)
			if err != nil {
				return err
			}
			return a.withChain(cmd, &f, func(ctx context.Context, c *comet.Client) error {
				acc, err := c.Account(ctx, cold)
				if err != nil {
					return err
				}
				owned, err := c.Overview(ctx, cold)
				if err != nil {
					return err
				}
				hotkeys := make([]overviewHotkey, 0, len(owned)+len(names))
				seen := map[wallet.Address]bool{}
				for _, o := range owned {
					seen[o.Hotkey] = true
					hotkeys = append(hotkeys, overviewHotkey{Name: names[o.Hotkey], OwnedHotkey: o})
				}
				for _, addr := range sortedAddrs(names) {
					if !seen[addr] {
						hotkeys = append(hotkeys, overviewHotkey{Name: names[addr], OwnedHotkey: chain.OwnedHotkey{Hotkey: addr, Registrations: []chain.Registration{}}})
					}
				}
				if f.json {
					return writeJSON(cmd.OutOrStdout(), map[string]any{"coldkey": cold.String(), "balance": acc.Balance, "hotkeys": hotkeys})
				}
				out := cmd.OutOrStdout()
				fmt.Fprintf(out, "coldkey %s  balance %s\n", cold, f.amount(acc.Balance))
				t := [][]string{{"HOTKEY", "ADDRESS", "NETUID", "UID", "STAKE", "EMISSION", "AXON", "LAST UPDATE"}}
				for _, h := range hotkeys {
					label := h.Name
					if label == "" {
						label = "(not in wallet)"
					}
					if len(h.Registrations) == 0 {
						t = append(t, []string{label, h.Hotkey.String(), "-", "-", f.amount(h.TotalStake), "-", "-", "-"})
						continue
					}
					for _, r := range h.Registrations {
						axon := "-"
						if r.Axon != nil && len(r.Axon.Multiaddrs) > 0 {
							axon = r.Axon.Multiaddrs[0]
						}
						t = append(t, []string{label, h.Hotkey.String(), strconv.Itoa(int(r.Netuid)), strconv.Itoa(int(r.UID)), f.amount(r.Stake), f.amount(r.Emission), axon, strconv.FormatUint(r.LastUpdate, 10)})
					}
				}
				return table(out, t)
			})
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	addWalletFlag(cmd, &name, "wallet whose hotkeys to show")
	return cmd
}

// sortedAddrs returns the map's addresses in their string order.
func sortedAddrs(m map[wallet.Address]string) []wallet.Address {
	out := make([]wallet.Address, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].String() < out[j-1].String(); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// inspectStake is one row of wallet inspect's output.
type inspectStake struct {
	// Name is the hotkey's name in the wallet, empty for another's.
	Name string `json:"name"`
	// Own says the wallet's coldkey owns the hotkey.
	Own bool `json:"own"`
	chain.StakeEntry
}

func (a *app) walletInspect() *cobra.Command {
	var f chainFlags
	var name string
	cmd := &cobra.Command{
		Use:   "inspect",
		Short: "Show the wallet's stake on every hotkey, its own and delegates', with each delegate's take",
		Long: `Show the wallet coldkey's balance and its stake on each hotkey it stakes on:
its own hotkeys and the delegates it delegates to, with each hotkey's owner,
delegate take and total stake. No password is needed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cold, names, err := a.walletChainInfo(name)
			if err != nil {
				return err
			}
			return a.withChain(cmd, &f, func(ctx context.Context, c *comet.Client) error {
				acc, err := c.Account(ctx, cold)
				if err != nil {
					return err
				}
				entries, err := c.StakesOf(ctx, cold)
				if err != nil {
					return err
				}
				rows := make([]inspectStake, 0, len(entries))
				var total uint64
				for _, e := range entries {
					total += e.Stake
					rows = append(rows, inspectStake{Name: names[e.Hotkey], Own: e.Owner == cold, StakeEntry: e})
				}
				if f.json {
					return writeJSON(cmd.OutOrStdout(), map[string]any{"coldkey": cold.String(), "balance": acc.Balance, "total_stake": total, "stakes": rows})
				}
				out := cmd.OutOrStdout()
				fmt.Fprintf(out, "coldkey %s  balance %s  staked %s\n", cold, f.amount(acc.Balance), f.amount(total))
				t := [][]string{{"HOTKEY", "ADDRESS", "OWNER", "TAKE", "YOUR STAKE", "TOTAL STAKE", "SUBNETS"}}
				for _, r := range rows {
					label, owner, take := r.Name, r.Owner.String(), "-"
					if label == "" {
						label = "-"
					}
					if r.Own {
						owner = "you"
					}
					if r.Delegate {
						take = strconv.FormatFloat(float64(r.Take)*100/65535, 'f', 2, 64) + "%"
					}
					t = append(t, []string{label, r.Hotkey.String(), owner, take, f.amount(r.Stake), f.amount(r.TotalStake), fmt.Sprint(r.Netuids)})
				}
				return table(out, t)
			})
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	addWalletFlag(cmd, &name, "wallet whose stakes to show")
	return cmd
}

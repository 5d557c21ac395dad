package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/chainlink/comet"
	"github.com/cybertensor/cybertensor/wallet"
)

// registerPoW solves the registration proof of work against a recent
// block and submits it, starting over when the block leaves the window.
func (a *app) registerPoW(ctx context.Context, cmd *cobra.Command, c *comet.Client, netuid uint16, hot, cold *wallet.PrivateKey, f *chainFlags) error {
	sub, err := c.Subnet(ctx, netuid)
	if err != nil {
		return err
	}
	hotAddr, coldAddr := hot.PublicKey().Address(), cold.PublicKey().Address()
	fmt.Fprintf(cmd.ErrOrStderr(), "solving proof of work at difficulty %d…\n", sub.Params.Difficulty)
	for {
		head, err := c.Head(ctx)
		if err != nil {
			return err
		}
		var bh struct{ Hash []byte }
		if err := c.Query(ctx, fmt.Sprintf("/blockhash/%d", head.Height), &bh); err != nil {
			return err
		}
		var nonce uint64
		found := false
		for start := uint64(0); !found && start < 1<<40; start += 200_000 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("proof of work: %w", err)
			}
			nonce, found = chain.SolvePoW(bh.Hash, hotAddr, sub.Params.Difficulty, start, 200_000)
			if now, err := c.Head(ctx); err == nil && now.Height >= head.Height+2 && !found {
				break // the block is about to leave the window; start over
			}
		}
		if !found {
			continue
		}
		msg := &chainpb.Msg{Sum: &chainpb.Msg_Register{Register: &chainpb.Register{Netuid: uint32(netuid), BlockNumber: head.Height, Nonce: nonce, Coldkey: coldAddr[:]}}}
		_, err = a.send(ctx, cmd.OutOrStdout(), c, hot, msg, f)
		if errors.Is(err, chain.ErrInvalidWorkBlock) {
			continue // mined too slowly: try a fresh block
		}
		return err
	}
}

func (a *app) stakeCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "stake", Short: "Add, remove and show stake"}
	cmd.AddCommand(a.stakeMove(true), a.stakeMove(false), a.stakeShow())
	cmd.AddCommand(a.stakeMoveCommand(), a.stakeTransferCommand())
	return cmd
}

func (a *app) stakeMove(add bool) *cobra.Command {
	var f chainFlags
	var k keyFlags
	var amount string
	use, short := "add", "Stake tokens from the coldkey's balance on a hotkey"
	if !add {
		use, short = "remove", "Unstake tokens from a hotkey back to the coldkey's balance"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			amt, err := parseAmount(amount)
			if err != nil {
				return usageError(err)
			}
			hot, err := a.hotkeyAddress(k.wallet, k.hotkey)
			if err != nil {
				return err
			}
			key, err := a.coldkey(&k)
			if err != nil {
				return err
			}
			msg := &chainpb.Msg{Sum: &chainpb.Msg_AddStake{AddStake: &chainpb.AddStake{Hotkey: hot[:], Amount: amt}}}
			if !add {
				msg = &chainpb.Msg{Sum: &chainpb.Msg_RemoveStake{RemoveStake: &chainpb.RemoveStake{Hotkey: hot[:], Amount: amt}}}
			}
			return a.sendWith(cmd, &f, key, msg)
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	addColdkeyFlags(cmd, &k)
	cmd.Flags().StringVar(&k.hotkey, "hotkey", wallet.DefaultHotkey, "hotkey name in the wallet, or a hotkey address (a delegate's)")
	cmd.Flags().StringVar(&amount, "amount", "", "tokens, e.g. 10 or 0.5")
	cmd.MarkFlagRequired("amount")
	return cmd
}

func (a *app) stakeShow() *cobra.Command {
	var f chainFlags
	var walletName string
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show the wallet's balance and its stake on each of its hotkeys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := a.store()
			if err != nil {
				return err
			}
			info, err := s.Info(walletName)
			if err != nil {
				return walletError(err)
			}
			cold, _, err := wallet.ParseAddress(info.Coldkey.Address)
			if err != nil {
				return err
			}
			return a.withChain(cmd, &f, func(ctx context.Context, c *comet.Client) error {
				acc, err := c.Account(ctx, cold)
				if err != nil {
					return err
				}
				type row struct {
					Hotkey  string   `json:"hotkey"`
					Address string   `json:"address"`
					Stake   uint64   `json:"stake"`
					Total   uint64   `json:"total_stake"`
					Netuids []uint16 `json:"netuids"`
				}
				var rows []row
				for _, h := range info.Hotkeys {
					var hk chain.HotkeyInfo
					err := c.Query(ctx, "/hotkey/"+h.Address, &hk)
					if err != nil && !isNotFound(err) {
						return err
					}
					var mine uint64
					for _, st := range hk.Stakes {
						if st.Coldkey == cold {
							mine = st.Amount
						}
					}
					rows = append(rows, row{Hotkey: h.Name, Address: h.Address, Stake: mine, Total: hk.Total, Netuids: hk.Netuids})
				}
				if f.json {
					return writeJSON(cmd.OutOrStdout(), map[string]any{"coldkey": cold.String(), "balance": acc.Balance, "hotkeys": rows})
				}
				fmt.Fprintf(cmd.OutOrStdout(), "coldkey %s  balance %s\n", cold, f.amount(acc.Balance))
				t := [][]string{{"HOTKEY", "ADDRESS", "YOUR STAKE", "TOTAL STAKE", "SUBNETS"}}
				for _, r := range rows {
					t = append(t, []string{r.Hotkey, r.Address, f.amount(r.Stake), f.amount(r.Total), fmt.Sprint(r.Netuids)})
				}
				return table(cmd.OutOrStdout(), t)
			})
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	cmd.Flags().StringVar(&walletName, "wallet", "default", "wallet whose coldkey and hotkeys to show")
	return cmd
}

func (a *app) delegateCommand() *cobra.Command {
	var f chainFlags
	var k keyFlags
	var takeText string
	cmd := &cobra.Command{
		Use:   "delegate",
		Short: "Open a hotkey to stake from others, keeping a take of their validator emission",
		Long: `Open a hotkey to stake from others (nominators), keeping a take of its
validator emission: --take in percent with at most 2 decimals, as set-take
takes it (e.g. 9.5); without it, the chain's default_take. To open at 0%,
open at any take and lower it with set-take. The subcommands change and show
the take and list delegates.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var take uint16
			if takeText != "" {
				var err error
				if take, err = parseTakePercent(takeText); err != nil {
					return usageError(err)
				}
				if take == 0 {
					return usageError(fmt.Errorf("--take %s: opening at 0%% is not possible (0 asks for the chain's default); open, then lower it with delegate set-take --take 0", takeText))
				}
			}
			hot, err := a.hotkeyAddress(k.wallet, k.hotkey)
			if err != nil {
				return err
			}
			key, err := a.coldkey(&k)
			if err != nil {
				return err
			}
			msg := &chainpb.Msg{Sum: &chainpb.Msg_BecomeDelegate{BecomeDelegate: &chainpb.BecomeDelegate{Hotkey: hot[:], Take: uint32(take)}}}
			return a.sendWith(cmd, &f, key, msg)
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	addColdkeyFlags(cmd, &k)
	cmd.Flags().StringVar(&k.hotkey, "hotkey", wallet.DefaultHotkey, "hotkey name in the wallet")
	cmd.Flags().StringVar(&takeText, "take", "", "percent of validator emission the delegate keeps, at most 2 decimals, e.g. 9.5 (default: the chain's default_take)")
	cmd.AddCommand(a.delegateSubcommands()...)
	return cmd
}

func (a *app) faucetCommand() *cobra.Command {
	var f chainFlags
	var k keyFlags
	cmd := &cobra.Command{
		Use:   "faucet",
		Short: "Ask a dev chain's faucet for tokens",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := a.coldkey(&k)
			if err != nil {
				return err
			}
			return a.sendWith(cmd, &f, key, &chainpb.Msg{Sum: &chainpb.Msg_Faucet{Faucet: &chainpb.Faucet{}}})
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	addColdkeyFlags(cmd, &k)
	return cmd
}

func isNotFound(err error) bool { return err != nil && errors.Is(err, chainlink.ErrNotFound) }

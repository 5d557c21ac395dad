package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chainlink/comet"
	"github.com/cybertensor/cybertensor/wallet"
)

func (a *app) walletBalance() *cobra.Command {
	var f chainFlags
	var name, address string
	cmd := &cobra.Command{
		Use:   "balance",
		Short: "Show the balance of a wallet's coldkey (or of any address)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if address == "" {
				s, err := a.store()
				if err != nil {
					return err
				}
				info, err := s.Info(name)
				if err != nil {
					return walletError(err)
				}
				address = info.Coldkey.Address
			}
			addr, _, err := wallet.ParseAddress(address)
			if err != nil {
				return usageError(err)
			}
			return a.withChain(cmd, &f, func(ctx context.Context, c *comet.Client) error {
				acc, err := c.Account(ctx, addr)
				if err != nil {
					return err
				}
				if f.json {
					return writeJSON(cmd.OutOrStdout(), map[string]any{"address": addr.String(), "balance": acc.Balance, "sequence": acc.Sequence})
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s  %s\n", addr, f.amount(acc.Balance))
				return nil
			})
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	addWalletFlag(cmd, &name, "wallet whose coldkey's balance to show")
	cmd.Flags().StringVar(&address, "address", "", "any address instead of the wallet's coldkey")
	return cmd
}

func (a *app) walletTransfer() *cobra.Command {
	var f chainFlags
	var k keyFlags
	var to, amount string
	cmd := &cobra.Command{
		Use:   "transfer",
		Short: "Send tokens from the wallet's coldkey to an address",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dest, _, err := wallet.ParseAddress(to)
			if err != nil {
				return usageError(fmt.Errorf("--to: %w", err))
			}
			amt, err := parseAmount(amount)
			if err != nil {
				return usageError(err)
			}
			key, err := a.coldkey(&k)
			if err != nil {
				return err
			}
			msg := &chainpb.Msg{Sum: &chainpb.Msg_Transfer{Transfer: &chainpb.Transfer{To: dest[:], Amount: amt}}}
			return a.sendWith(cmd, &f, key, msg)
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	addWalletFlag(cmd, &k.wallet, "wallet whose coldkey pays")
	cmd.Flags().StringVar(&k.passwordFile, "password-file", "", "read the coldkey password from this file")
	cmd.Flags().StringVar(&to, "to", "", "recipient address (ct1…)")
	cmd.Flags().StringVar(&amount, "amount", "", "tokens, e.g. 1.5")
	cmd.MarkFlagRequired("to")
	cmd.MarkFlagRequired("amount")
	return cmd
}

package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chainlink/comet"
)

// priceLimit is a --max-burn or --max-lock flag: a token amount, or
// nothing for no limit (sent as 0).
type priceLimit struct {
	flag, value string
	amount      uint64
}

func (p *priceLimit) parse() error {
	if p.value == "" {
		return nil
	}
	v, err := parseAmount(p.value)
	if err != nil {
		return fmt.Errorf("--%s: %w", p.flag, err)
	}
	if v == 0 {
		return fmt.Errorf("--%s 0: the chain reads 0 as no limit; leave the flag out for that, or give a positive amount", p.flag)
	}
	p.amount = v
	return nil
}

func (a *app) subnetsBurnCost() *cobra.Command {
	var f chainFlags
	var netuid uint16
	cmd := &cobra.Command{
		Use:   "burn-cost",
		Short: "Show what registering a neuron on a subnet burns now, and what the next adjustment makes it",
		Long: `Show a subnet's registration burn and its next adjustment: at the block shown, the
burn moves toward target_regs_per_interval (see "Registration price" in the
operator guide); "next burn" is what it becomes if no more registrations arrive
before then. Register with --max-burn to pay at most a quoted price.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withChain(cmd, &f, func(ctx context.Context, c *comet.Client) error {
				bc, err := c.BurnCost(ctx, netuid)
				if err != nil {
					return err
				}
				if f.json {
					return writeJSON(cmd.OutOrStdout(), bc)
				}
				return table(cmd.OutOrStdout(), [][]string{
					{"netuid", strconv.Itoa(int(bc.Netuid))},
					{"block", strconv.FormatUint(bc.Block, 10)},
					{"burn", f.amount(bc.Burn)},
					{"next_burn", f.amount(bc.NextBurn)},
					{"next_adjustment_block", strconv.FormatUint(bc.NextAdjustmentBlock, 10)},
					{"registrations", fmt.Sprintf("%d this interval (%d burned), target %d per %d blocks", bc.RegsThisInterval, bc.BurnRegsThisInterval, bc.TargetRegsPerInterval, bc.AdjustmentInterval)},
					{"min_burn", f.amount(bc.MinBurn)},
					{"max_burn", f.amount(bc.MaxBurn)},
				})
			})
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	netuidFlag(cmd, &netuid)
	addCheck(cmd, func() error {
		if netuid == chain.RootNetuid {
			return errors.New("--netuid 0: the root network burns nothing; join it with: cybertensor root register")
		}
		return nil
	})
	return cmd
}

func (a *app) subnetsLockCost() *cobra.Command {
	var f chainFlags
	cmd := &cobra.Command{
		Use:   "lock-cost",
		Short: "Show what creating a subnet locks now, and how that cost decays",
		Long: `Show the subnet lock cost: twice the last subnet's lock right after it was
registered, falling by a step each block down to the minimum. Create with
--max-lock to pay at most a quoted price.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withChain(cmd, &f, func(ctx context.Context, c *comet.Client) error {
				lc, err := c.LockCost(ctx)
				if err != nil {
					return err
				}
				if f.json {
					return writeJSON(cmd.OutOrStdout(), lc)
				}
				return table(cmd.OutOrStdout(), [][]string{
					{"block", strconv.FormatUint(lc.Block, 10)},
					{"lock_cost", f.amount(lc.Amount)},
					{"decay_per_block", f.amount(lc.DecayPerBlock)},
					{"min_lock_cost", f.amount(lc.MinLockCost)},
					{"last_lock", fmt.Sprintf("%s at block %d", f.amount(lc.LastLock), lc.LastLockBlock)},
					{"subnets", fmt.Sprintf("%d of %d", lc.Subnets, lc.SubnetLimit)},
				})
			})
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	return cmd
}

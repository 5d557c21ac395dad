package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
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

func (a *app) subnetsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "subnets",
		Short: "List, create and configure subnets, and register neurons on them",
	}
	cmd.AddCommand(a.subnetsList(), a.subnetsCreate(), a.subnetsHyperparams(), a.subnetsRegister(), a.subnetsSetHyperparam(), a.subnetsSpec(),
		a.subnetsSetIdentity(), a.subnetsGetIdentity(), a.subnetsBurnCost(), a.subnetsLockCost(), a.subnetsMechanisms(), a.subnetsSetSpec())
	return cmd
}

func (a *app) subnetsList() *cobra.Command {
	var f chainFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the subnets with each one's share of block emission (as the last root epoch set it)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withChain(cmd, &f, func(ctx context.Context, c *comet.Client) error {
				subs, err := c.Subnets(ctx)
				if err != nil {
					return err
				}
				be, err := blockEmission(ctx, c)
				if err != nil {
					return err
				}
				out := make([]subnetOut, 0, len(subs))
				for _, s := range subs {
					out = append(out, subnetOut{SubnetInfo: s, EmissionPercent: emissionPercent(s.EmissionPerBlock, be)})
				}
				if f.json {
					return writeJSON(cmd.OutOrStdout(), out)
				}
				rows := [][]string{{"NETUID", "NAME", "N", "MAX", "TEMPO", "EMISSION", "EMISSION/BLOCK", "BURN", "OWNER", "IDENTITY"}}
				for _, s := range out {
					share := fmt.Sprintf("%.2f%%", s.EmissionPercent)
					if s.Netuid == chain.RootNetuid {
						share = "-"
					}
					rows = append(rows, []string{strconv.Itoa(int(s.Netuid)), s.Name, strconv.Itoa(s.N), strconv.FormatUint(s.Params.MaxAllowedUIDs, 10),
						strconv.FormatUint(s.Params.Tempo, 10), share, f.amount(s.EmissionPerBlock), f.amount(s.Params.Burn), s.Owner.String(), identityName(s.Identity)})
				}
				return table(cmd.OutOrStdout(), rows)
			})
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	return cmd
}

func (a *app) subnetsCreate() *cobra.Command {
	var f chainFlags
	var k keyFlags
	var name, specFile, builtinSpec string
	maxLock := priceLimit{flag: "max-lock"}
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Open a subnet owned by the wallet's coldkey, locking the current lock cost",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := loadSpec(specFile, builtinSpec)
			if err != nil {
				return err
			}
			// What the spec refers to must be there too, before anything is
			// kept or the lock cost paid: a subnet whose validators cannot
			// load their tasks pays nobody.
			if err := checkSpecFiles(specFile, spec); err != nil {
				return err
			}
			msg := &chainpb.RegisterNetwork{Name: name, MaxLock: maxLock.amount}
			key, err := a.coldkey(&k)
			if err != nil {
				return err
			}
			if spec != nil {
				if msg.Name == "" {
					msg.Name = spec.Name
				}
				h := spec.Hash()
				msg.SpecHash = h[:]
				// The text goes into the library first: a subnet whose
				// spec nobody holds could not be read.
				id, err := a.keepSpec(key, spec, specFile)
				if err != nil {
					return fmt.Errorf("keeping the spec in the knowledge library: %w", err)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "spec %q valid; its text is %s in the knowledge library\n", spec.Name, id)
			}
			return a.withChain(cmd, &f, func(ctx context.Context, c *comet.Client) error {
				rec, err := a.send(ctx, cmd.OutOrStdout(), c, key, &chainpb.Msg{Sum: &chainpb.Msg_RegisterNetwork{RegisterNetwork: msg}}, &f)
				if err != nil || spec == nil {
					return err
				}
				if len(spec.Hyperparameters) > 0 {
					if err := a.applyHyperparams(ctx, cmd, c, key, rec, spec, &f); err != nil {
						return err
					}
				}
				return a.applyMechanisms(ctx, cmd, c, key, rec, specShares(spec), &f)
			})
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	addColdkeyFlags(cmd, &k)
	cmd.Flags().StringVar(&name, "name", "", "subnet name (at most 64 bytes)")
	cmd.Flags().StringVar(&specFile, "spec", "", "the subnet's spec file (validated, with the files it names, before anything is sent; a version 2 spec is locked: its files' CIDs are written into its files: section; its SHA-256 is recorded on chain, its text and files kept in the knowledge library)")
	cmd.Flags().StringVar(&builtinSpec, "builtin", "", "a built-in spec instead of --spec: "+strings.Join(subnet.BuiltinNames(), ", "))
	cmd.Flags().StringVar(&maxLock.value, "max-lock", "", "lock at most this many tokens: refused (lock_above_limit), not charged, if the lock cost is higher at inclusion (see subnets lock-cost)")
	addCheck(cmd, maxLock.parse)
	return cmd
}

// applyHyperparams sets a new subnet's spec hyperparameters, in name
// order, as its owner. The spec was validated against the owner's rules,
// so the chain refuses one only if it changed its rules meanwhile; then
// the error says which are left to set by hand.
func (a *app) applyHyperparams(ctx context.Context, cmd *cobra.Command, c chainlink.Chain, owner *wallet.PrivateKey, rec *chainlink.Receipt, spec *subnet.Spec, f *chainFlags) error {
	var netuid uint64
	for _, e := range rec.Events {
		if e.Type == "network_registered" {
			netuid, _ = strconv.ParseUint(e.Attrs["netuid"], 10, 16)
		}
	}
	if netuid == 0 {
		return errors.New("the chain did not say which netuid it gave the subnet; set its hyperparameters with subnets set-hyperparam")
	}
	names := slices.Sorted(maps.Keys(spec.Hyperparameters))
	sender := chainlink.NewSender(c, owner)
	for i, name := range names {
		v := spec.Hyperparameters[name]
		msg := &chainpb.Msg{Sum: &chainpb.Msg_SudoSetHyperparam{SudoSetHyperparam: &chainpb.SudoSetHyperparam{Netuid: uint32(netuid), Name: name, Value: v}}}
		if _, err := sender.Send(ctx, msg); err != nil {
			return fmt.Errorf("subnet %d is open, but setting %s = %d failed (left to set with subnets set-hyperparam: %s): %w",
				netuid, name, v, strings.Join(names[i:], ", "), err)
		}
		if !f.json {
			fmt.Fprintf(cmd.ErrOrStderr(), "  %s = %s\n", name, f.attr(name, strconv.FormatUint(v, 10)))
		}
	}
	return nil
}

func netuidFlag(cmd *cobra.Command, v *uint16) {
	cmd.Flags().Uint16Var(v, "netuid", 1, "subnet")
}

func (a *app) subnetsHyperparams() *cobra.Command {
	var f chainFlags
	var netuid uint16
	cmd := &cobra.Command{
		Use:   "hyperparams",
		Short: "Show a subnet's hyperparameters",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withChain(cmd, &f, func(ctx context.Context, c *comet.Client) error {
				s, err := c.Subnet(ctx, netuid)
				if err != nil {
					return err
				}
				if f.json {
					return writeJSON(cmd.OutOrStdout(), s.Params)
				}
				rows := [][]string{{"HYPERPARAMETER", "VALUE"}}
				for _, name := range chain.HyperparamNames() {
					v, _ := chain.HyperparamValue(s.Params, name)
					rows = append(rows, []string{name, f.attr(name, strconv.FormatUint(v, 10))})
				}
				return table(cmd.OutOrStdout(), rows)
			})
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	netuidFlag(cmd, &netuid)
	return cmd
}

func (a *app) subnetsSetHyperparam() *cobra.Command {
	var f chainFlags
	var k keyFlags
	var netuid uint16
	var name, value string
	cmd := &cobra.Command{
		Use:   "set-hyperparam",
		Short: "Set a subnet hyperparameter (subnet owner or chain root, as the parameter allows)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, ok := chain.HyperparamValue(chain.Hyperparams{}, name); !ok {
				return usageError(fmt.Errorf("--name %q: known hyperparameters: %v", name, chain.HyperparamNames()))
			}
			v, err := hyperparamValue(name, value, f.raw)
			if err != nil {
				return usageError(err)
			}
			key, err := a.coldkey(&k)
			if err != nil {
				return err
			}
			msg := &chainpb.Msg{Sum: &chainpb.Msg_SudoSetHyperparam{SudoSetHyperparam: &chainpb.SudoSetHyperparam{Netuid: uint32(netuid), Name: name, Value: v}}}
			return a.sendWith(cmd, &f, key, msg)
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	addColdkeyFlags(cmd, &k)
	netuidFlag(cmd, &netuid)
	cmd.Flags().StringVar(&name, "name", "", "hyperparameter name (see subnets hyperparams)")
	cmd.Flags().StringVar(&value, "value", "", "new value; in tokens for the amounts (burn, min_burn, max_burn), in base units with --raw")
	cmd.MarkFlagRequired("name")
	cmd.MarkFlagRequired("value")
	return cmd
}

// hyperparamValue reads --value: a whole number, or for a token amount
// a number of tokens (base units with raw).
func hyperparamValue(name, value string, raw bool) (uint64, error) {
	if chain.IsTokenAmount(name) && !raw {
		v, err := parseAmount(value)
		if err != nil {
			return 0, fmt.Errorf("--value: %s is in tokens (give --raw for base units): %w", name, err)
		}
		return v, nil
	}
	v, err := strconv.ParseUint(value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("--value %q: want a whole number", value)
	}
	return v, nil
}

func (a *app) subnetsRegister() *cobra.Command {
	var f chainFlags
	var k keyFlags
	var netuid uint16
	var pow bool
	maxBurn := priceLimit{flag: "max-burn"}
	cmd := &cobra.Command{
		Use:   "register",
		Short: "Register a hotkey on a subnet, burning the registration cost (or with --pow, by proof of work)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cold, err := a.coldkey(&k)
			if err != nil {
				return err
			}
			hot, err := a.hotkey(&k)
			if err != nil {
				return err
			}
			return a.withChain(cmd, &f, func(ctx context.Context, c *comet.Client) error {
				hotAddr := hot.PublicKey().Address()
				if !pow {
					msg := &chainpb.Msg{Sum: &chainpb.Msg_BurnedRegister{BurnedRegister: &chainpb.BurnedRegister{Netuid: uint32(netuid), Hotkey: hotAddr[:], MaxBurn: maxBurn.amount}}}
					_, err := a.send(ctx, cmd.OutOrStdout(), c, cold, msg, &f)
					return err
				}
				return a.registerPoW(ctx, cmd, c, netuid, hot, cold, &f)
			})
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	addHotkeyFlags(cmd, &k)
	netuidFlag(cmd, &netuid)
	cmd.Flags().BoolVar(&pow, "pow", false, "register by proof of work instead of burning")
	cmd.Flags().StringVar(&maxBurn.value, "max-burn", "", "burn at most this many tokens: refused (burn_above_limit), not charged, if the burn is higher at inclusion (see subnets burn-cost)")
	addCheck(cmd, func() error {
		if pow && maxBurn.value != "" {
			return errors.New("--max-burn limits the burn; a --pow registration burns nothing")
		}
		return maxBurn.parse()
	})
	return cmd
}

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
	"github.com/cybertensor/cybertensor/chainlink/comet"
	"github.com/cybertensor/cybertensor/wallet"
)

func (a *app) childrenCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "children",
		Short: "Lend a hotkey's stake weight on a subnet to child hotkeys, and set a child's take",
		Long: `A parent hotkey lends proportions of its stake weight on a subnet to up to 5
child hotkeys. The subnet's epoch counts each hotkey's effective stake: its own
stake less what it lends, plus what its parents lend it. The dividends a child
earns with lent stake go back to the parents, less the child's childkey take
(0 to max_childkey_take, 18% by default; none when parent and child have the
same coldkey). A change applies children_cooldown blocks after it is included;
"children get" shows it pending until then.`,
	}
	take := &cobra.Command{Use: "take", Short: "Set or show a child hotkey's childkey take on a subnet"}
	take.AddCommand(a.childrenTakeSet(), a.childrenTakeGet())
	cmd.AddCommand(a.childrenSet(), a.childrenRevoke(), a.childrenGet(), take)
	return cmd
}

// parseShare reads a share as a percent ("50%", "12.5%") or a fraction
// ("0.5") and returns it as a rational in [0, 1].
func parseShare(s string) (*big.Rat, error) {
	t := strings.TrimSpace(s)
	percent := strings.HasSuffix(t, "%")
	t = strings.TrimSuffix(t, "%")
	r, ok := new(big.Rat).SetString(t)
	if !ok || strings.ContainsAny(t, "eE/") || r.Sign() < 0 {
		return nil, fmt.Errorf("%q: want a percent such as 50%% or a fraction such as 0.5", s)
	}
	if percent {
		r.Quo(r, big.NewRat(100, 1))
	}
	if r.Cmp(big.NewRat(1, 1)) > 0 {
		return nil, fmt.Errorf("%q is above 100%%", s)
	}
	return r, nil
}

// scale returns round(r · max) for r in [0, 1].
func scale(r *big.Rat, max uint64) uint64 {
	v := new(big.Rat).Mul(r, new(big.Rat).SetInt(new(big.Int).SetUint64(max)))
	v.Add(v, big.NewRat(1, 2))
	return new(big.Int).Quo(v.Num(), v.Denom()).Uint64()
}

// percentOf prints v / max as a percent with up to 4 decimals.
func percentOf(v, max uint64) string {
	r := new(big.Rat).SetFrac(new(big.Int).SetUint64(v), new(big.Int).SetUint64(max))
	r.Mul(r, big.NewRat(100, 1))
	s := strings.TrimRight(strings.TrimRight(r.FloatString(4), "0"), ".")
	return s + "%"
}

// parseChildren reads --child ADDRESS:SHARE flags into children: at most
// chain.MaxChildren, no address twice, each share above 0 and the sum at
// most 100%.
func parseChildren(flags []string) ([]chain.Child, error) {
	if len(flags) == 0 {
		return nil, errors.New("give at least one --child ADDRESS:SHARE (to remove all children, use children revoke)")
	}
	if len(flags) > chain.MaxChildren {
		return nil, fmt.Errorf("%d children: a parent has at most %d on a subnet", len(flags), chain.MaxChildren)
	}
	out := make([]chain.Child, 0, len(flags))
	var sum uint64
	for _, f := range flags {
		i := strings.LastIndex(f, ":")
		if i < 0 {
			return nil, fmt.Errorf("--child %q: want ADDRESS:SHARE, e.g. ct1…:50%%", f)
		}
		addr, _, err := wallet.ParseAddress(f[:i])
		if err != nil {
			return nil, fmt.Errorf("--child %q: %w", f, err)
		}
		share, err := parseShare(f[i+1:])
		if err != nil {
			return nil, fmt.Errorf("--child %q: share %w", f, err)
		}
		p := scale(share, chain.ProportionOne)
		if p == 0 {
			return nil, fmt.Errorf("--child %q: the share must be above 0", f)
		}
		for _, c := range out {
			if c.Hotkey == addr {
				return nil, fmt.Errorf("--child %s is given twice", addr)
			}
		}
		if sum+p < sum {
			return nil, errors.New("the children's shares sum above 100%")
		}
		sum += p
		out = append(out, chain.Child{Hotkey: addr, Proportion: p})
	}
	return out, nil
}

func childrenMsg(netuid uint16, parent wallet.Address, children []chain.Child) *chainpb.Msg {
	list := make([]*chainpb.Child, len(children))
	for i, c := range children {
		list[i] = &chainpb.Child{Hotkey: append([]byte(nil), c.Hotkey[:]...), Proportion: c.Proportion}
	}
	return &chainpb.Msg{Sum: &chainpb.Msg_SetChildren{SetChildren: &chainpb.SetChildren{Netuid: uint32(netuid), Hotkey: parent[:], Children: list}}}
}

// sendChildren signs a set_children for the parent hotkey with the
// wallet's coldkey.
func (a *app) sendChildren(cmd *cobra.Command, f *chainFlags, k *keyFlags, netuid uint16, children []chain.Child) error {
	parent, err := a.hotkeyAddress(k.wallet, k.hotkey)
	if err != nil {
		return err
	}
	key, err := a.coldkey(k)
	if err != nil {
		return err
	}
	return a.sendWith(cmd, f, key, childrenMsg(netuid, parent, children))
}

func (a *app) childrenSet() *cobra.Command {
	var f chainFlags
	var k keyFlags
	var netuid uint16
	var flags []string
	var children []chain.Child
	cmd := &cobra.Command{
		Use:   "set",
		Short: "Lend the hotkey's stake weight on a subnet to child hotkeys (signed by the coldkey; applies after children_cooldown blocks)",
		Long: `Replace the hotkey's children on a subnet with the --child list: each
--child ADDRESS:SHARE lends SHARE of the hotkey's stake weight to the hotkey at
ADDRESS, the share as a percent (50%) or a fraction (0.5), above 0, summing to at
most 100%. At most 5 children; a child may not be a parent of the hotkey. The
change applies children_cooldown blocks later; a later set or revoke before then
replaces it.`,
		Example: "  cybertensor children set --netuid 1 --hotkey default --child ct1…:50% --child ct1…:0.25",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.sendChildren(cmd, &f, &k, netuid, children)
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	addColdkeyFlags(cmd, &k)
	cmd.Flags().StringVar(&k.hotkey, "hotkey", wallet.DefaultHotkey, "the parent: a hotkey name in the wallet, or its address")
	netuidFlag(cmd, &netuid)
	cmd.Flags().StringArrayVar(&flags, "child", nil, "a child and its share, ADDRESS:SHARE (e.g. ct1…:50% or ct1…:0.5); repeat for up to 5")
	addCheck(cmd, func() (err error) {
		children, err = parseChildren(flags)
		return err
	})
	return cmd
}

func (a *app) childrenRevoke() *cobra.Command {
	var f chainFlags
	var k keyFlags
	var netuid uint16
	cmd := &cobra.Command{
		Use:   "revoke",
		Short: "Remove all the hotkey's children on a subnet (signed by the coldkey; applies after children_cooldown blocks)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.sendChildren(cmd, &f, &k, netuid, nil)
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	addColdkeyFlags(cmd, &k)
	cmd.Flags().StringVar(&k.hotkey, "hotkey", wallet.DefaultHotkey, "the parent: a hotkey name in the wallet, or its address")
	netuidFlag(cmd, &netuid)
	return cmd
}

// childOut is one edge as the children commands print it.
type childOut struct {
	Hotkey     string `json:"hotkey"`
	Proportion uint64 `json:"proportion"`
	Percent    string `json:"percent"`
}

// childrenOut is "children get --json": a hotkey's children, pending
// change, parents, childkey take and stakes (base units).
type childrenOut struct {
	Netuid   uint16     `json:"netuid"`
	Hotkey   string     `json:"hotkey"`
	Children []childOut `json:"children"`
	Pending  *struct {
		ApplyAt  uint64     `json:"apply_at"`
		Children []childOut `json:"children"`
	} `json:"pending,omitempty"`
	Parents             []childOut `json:"parents"`
	ChildkeyTake        uint16     `json:"childkey_take"`
	ChildkeyTakePercent string     `json:"childkey_take_percent"`
	Stake               uint64     `json:"stake"`
	EffectiveStake      uint64     `json:"effective_stake"`
}

func toChildOuts(list []chain.Child) []childOut {
	out := make([]childOut, 0, len(list))
	for _, c := range list {
		out = append(out, childOut{Hotkey: c.Hotkey.String(), Proportion: c.Proportion, Percent: percentOf(c.Proportion, chain.ProportionOne)})
	}
	return out
}

func toChildrenOut(info chain.ChildKeysInfo) childrenOut {
	o := childrenOut{
		Netuid: info.Netuid, Hotkey: info.Hotkey.String(), Children: toChildOuts(info.Children), Parents: toChildOuts(info.Parents),
		ChildkeyTake: info.ChildkeyTake, ChildkeyTakePercent: percentOf(uint64(info.ChildkeyTake), 65535),
		Stake: info.Stake, EffectiveStake: info.EffectiveStake,
	}
	if p := info.Pending; p != nil {
		o.Pending = &struct {
			ApplyAt  uint64     `json:"apply_at"`
			Children []childOut `json:"children"`
		}{p.ApplyAt, toChildOuts(p.Children)}
	}
	return o
}

// readChildKeys resolves the hotkey and reads its child-key state.
func (a *app) readChildKeys(cmd *cobra.Command, f *chainFlags, k *keyFlags, netuid uint16, show func(childrenOut) error) error {
	hk, err := a.hotkeyAddress(k.wallet, k.hotkey)
	if err != nil {
		return err
	}
	return a.withChain(cmd, f, func(ctx context.Context, c *comet.Client) error {
		info, err := c.ChildKeys(ctx, netuid, hk)
		if err != nil {
			return err
		}
		o := toChildrenOut(info)
		if f.json {
			return writeJSON(cmd.OutOrStdout(), o)
		}
		return show(o)
	})
}

func addReadHotkeyFlags(cmd *cobra.Command, k *keyFlags) {
	cmd.Flags().StringVar(&k.wallet, "wallet", "default", "wallet of the hotkey (when --hotkey is a name)")
	cmd.Flags().StringVar(&k.hotkey, "hotkey", wallet.DefaultHotkey, "hotkey: an address, or a hotkey name of the wallet")
}

func (a *app) childrenGet() *cobra.Command {
	var f chainFlags
	var k keyFlags
	var netuid uint16
	cmd := &cobra.Command{
		Use:   "get",
		Short: "Show a hotkey's children (applied and pending), parents, childkey take and effective stake on a subnet",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.readChildKeys(cmd, &f, &k, netuid, func(o childrenOut) error {
				w := cmd.OutOrStdout()
				rows := [][]string{
					{"netuid", strconv.Itoa(int(o.Netuid))}, {"hotkey", o.Hotkey},
					{"stake", f.amount(o.Stake)}, {"effective stake", f.amount(o.EffectiveStake)},
					{"childkey take", o.ChildkeyTakePercent},
				}
				if o.Pending != nil {
					rows = append(rows, []string{"pending", fmt.Sprintf("%d children, applies at block %d", len(o.Pending.Children), o.Pending.ApplyAt)})
				}
				if err := table(w, rows); err != nil {
					return err
				}
				edges := func(title string, list []childOut) error {
					fmt.Fprintf(w, "%s:\n", title)
					if len(list) == 0 {
						fmt.Fprintln(w, "  none")
						return nil
					}
					t := [][]string{{"  HOTKEY", "SHARE", "PROPORTION"}}
					for _, c := range list {
						t = append(t, []string{"  " + c.Hotkey, c.Percent, strconv.FormatUint(c.Proportion, 10)})
					}
					return table(w, t)
				}
				if err := edges("children", o.Children); err != nil {
					return err
				}
				if o.Pending != nil {
					if err := edges(fmt.Sprintf("pending children (from block %d)", o.Pending.ApplyAt), o.Pending.Children); err != nil {
						return err
					}
				}
				return edges("parents", o.Parents)
			})
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	addReadHotkeyFlags(cmd, &k)
	netuidFlag(cmd, &netuid)
	return cmd
}

func (a *app) childrenTakeSet() *cobra.Command {
	var f chainFlags
	var k keyFlags
	var netuid uint16
	var takeFlag string
	var take uint32
	cmd := &cobra.Command{
		Use:   "set",
		Short: "Set the share of dividends earned with parents' stake that the child hotkey keeps (signed by the coldkey)",
		Long: `Set the hotkey's childkey take on a subnet: the share of the dividends it earns
with its parents' lent stake that it keeps, as a percent (18%) or a fraction
(0.18), at most the chain's max_childkey_take (18% by default). Lowering it is
always allowed; raising it must wait childkey_take_rate_limit blocks after it was
last set.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hk, err := a.hotkeyAddress(k.wallet, k.hotkey)
			if err != nil {
				return err
			}
			key, err := a.coldkey(&k)
			if err != nil {
				return err
			}
			msg := &chainpb.Msg{Sum: &chainpb.Msg_SetChildkeyTake{SetChildkeyTake: &chainpb.SetChildkeyTake{Netuid: uint32(netuid), Hotkey: hk[:], Take: take}}}
			return a.sendWith(cmd, &f, key, msg)
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	addColdkeyFlags(cmd, &k)
	cmd.Flags().StringVar(&k.hotkey, "hotkey", wallet.DefaultHotkey, "the child: a hotkey name in the wallet, or its address")
	netuidFlag(cmd, &netuid)
	cmd.Flags().StringVar(&takeFlag, "take", "", "the take, as a percent (18%) or a fraction (0.18)")
	cmd.MarkFlagRequired("take")
	addCheck(cmd, func() error {
		r, err := parseShare(takeFlag)
		if err != nil {
			return fmt.Errorf("--take %w", err)
		}
		take = uint32(scale(r, 65535))
		return nil
	})
	return cmd
}

func (a *app) childrenTakeGet() *cobra.Command {
	var f chainFlags
	var k keyFlags
	var netuid uint16
	cmd := &cobra.Command{
		Use:   "get",
		Short: "Show a hotkey's childkey take on a subnet",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.readChildKeys(cmd, &f, &k, netuid, func(o childrenOut) error {
				return table(cmd.OutOrStdout(), [][]string{
					{"netuid", strconv.Itoa(int(o.Netuid))}, {"hotkey", o.Hotkey},
					{"childkey take", o.ChildkeyTakePercent}, {"take (u16)", strconv.Itoa(int(o.ChildkeyTake))},
				})
			})
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	addReadHotkeyFlags(cmd, &k)
	netuidFlag(cmd, &netuid)
	return cmd
}

package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chainlink/comet"
	"github.com/cybertensor/cybertensor/wallet"
)

func (a *app) commitmentsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "commitments",
		Short: "Publish and read hotkeys' commitments on a subnet (a CID, a model identifier, an endpoint)",
		Long: `A hotkey registered on a subnet commits up to 512 bytes there: the CID of a
knowledge object, a model identifier, an endpoint. A new commitment replaces the
old one, at most once per the subnet's commitment_rate_limit blocks.`,
	}
	cmd.AddCommand(a.commitmentsSet(), a.commitmentsGet(), a.commitmentsList())
	return cmd
}

// commitmentData is what "commitments set" commits: exactly one of text,
// hex or a CID.
type commitmentData struct {
	text, hex, cid string
}

// parse returns the bytes to commit: the text as it is, the hex decoded,
// or the CID in its canonical string form.
func (d commitmentData) parse() ([]byte, error) {
	given := 0
	for _, s := range []string{d.text, d.hex, d.cid} {
		if s != "" {
			given++
		}
	}
	if given != 1 {
		return nil, errors.New("give exactly one of --data, --data-hex and --cid")
	}
	var b []byte
	switch {
	case d.text != "":
		b = []byte(d.text)
	case d.hex != "":
		var err error
		if b, err = hex.DecodeString(d.hex); err != nil {
			return nil, fmt.Errorf("--data-hex: %w", err)
		}
	default:
		c, err := cid.Decode(d.cid)
		if err != nil {
			return nil, fmt.Errorf("--cid %q: %w", d.cid, err)
		}
		b = []byte(c.String())
	}
	if len(b) == 0 || len(b) > chain.MaxCommitmentLen {
		return nil, fmt.Errorf("the commitment is %d bytes: want 1 to %d", len(b), chain.MaxCommitmentLen)
	}
	return b, nil
}

func (a *app) commitmentsSet() *cobra.Command {
	var f chainFlags
	var k keyFlags
	var d commitmentData
	var netuid uint16
	var data []byte
	cmd := &cobra.Command{
		Use:   "set",
		Short: "Commit data for the hotkey on a subnet (signed by the hotkey)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := a.hotkey(&k)
			if err != nil {
				return err
			}
			hk := key.PublicKey().Address()
			msg := &chainpb.Msg{Sum: &chainpb.Msg_SetCommitment{SetCommitment: &chainpb.SetCommitment{Netuid: uint32(netuid), Hotkey: hk[:], Data: data}}}
			return a.sendWith(cmd, &f, key, msg)
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	addHotkeyFlags(cmd, &k)
	netuidFlag(cmd, &netuid)
	cmd.Flags().StringVar(&d.text, "data", "", "commit this text (UTF-8), e.g. an endpoint or a model identifier")
	cmd.Flags().StringVar(&d.hex, "data-hex", "", "commit these bytes, in hex")
	cmd.Flags().StringVar(&d.cid, "cid", "", "commit this CID (of a knowledge object), as its canonical string")
	addCheck(cmd, func() (err error) {
		data, err = d.parse()
		return err
	})
	return cmd
}

// commitmentOut is one commitment as the commitments commands print it:
// the data in hex and, if it is printable UTF-8, as text.
type commitmentOut struct {
	Netuid uint16 `json:"netuid"`
	UID    uint16 `json:"uid"`
	Hotkey string `json:"hotkey"`
	Block  uint64 `json:"block"`
	Hex    string `json:"hex"`
	Text   string `json:"text,omitempty"`
}

func toCommitmentOut(c chain.CommitmentInfo) commitmentOut {
	o := commitmentOut{Netuid: c.Netuid, UID: c.UID, Hotkey: c.Hotkey.String(), Block: c.Block, Hex: hex.EncodeToString(c.Data)}
	if printable(c.Data) {
		o.Text = string(c.Data)
	}
	return o
}

// printable says whether b is UTF-8 text without control characters.
func printable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// shown is the data as text if printable, else as 0x-prefixed hex.
func (o commitmentOut) shown() string {
	if o.Text != "" {
		return o.Text
	}
	return "0x" + o.Hex
}

func (a *app) commitmentsGet() *cobra.Command {
	var f chainFlags
	var k keyFlags
	var netuid uint16
	cmd := &cobra.Command{
		Use:   "get",
		Short: "Show a hotkey's commitment on a subnet (the wallet's hotkey, or --hotkey ADDRESS)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hk, err := a.hotkeyAddress(k.wallet, k.hotkey)
			if err != nil {
				return err
			}
			return a.withChain(cmd, &f, func(ctx context.Context, c *comet.Client) error {
				info, err := c.Commitment(ctx, netuid, hk)
				if err != nil {
					return err
				}
				o := toCommitmentOut(info)
				if f.json {
					return writeJSON(cmd.OutOrStdout(), o)
				}
				return table(cmd.OutOrStdout(), [][]string{
					{"netuid", strconv.Itoa(int(o.Netuid))}, {"uid", strconv.Itoa(int(o.UID))}, {"hotkey", o.Hotkey},
					{"block", strconv.FormatUint(o.Block, 10)}, {"data", o.shown()},
				})
			})
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	cmd.Flags().StringVar(&k.wallet, "wallet", "default", "wallet of the hotkey (when --hotkey is a name)")
	cmd.Flags().StringVar(&k.hotkey, "hotkey", wallet.DefaultHotkey, "hotkey: an address, or a hotkey name of the wallet")
	netuidFlag(cmd, &netuid)
	return cmd
}

func (a *app) commitmentsList() *cobra.Command {
	var f chainFlags
	var netuid uint16
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List a subnet's commitments in uid order",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withChain(cmd, &f, func(ctx context.Context, c *comet.Client) error {
				list, err := c.Commitments(ctx, netuid)
				if err != nil {
					return err
				}
				out := make([]commitmentOut, 0, len(list))
				for _, ci := range list {
					out = append(out, toCommitmentOut(ci))
				}
				if f.json {
					return writeJSON(cmd.OutOrStdout(), out)
				}
				rows := [][]string{{"UID", "BLOCK", "HOTKEY", "DATA"}}
				for _, o := range out {
					rows = append(rows, []string{strconv.Itoa(int(o.UID)), strconv.FormatUint(o.Block, 10), o.Hotkey, o.shown()})
				}
				return table(cmd.OutOrStdout(), rows)
			})
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	netuidFlag(cmd, &netuid)
	return cmd
}

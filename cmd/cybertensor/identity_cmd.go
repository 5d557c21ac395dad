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

// identityFlags are what the set-identity commands set: the fields, or
// --remove.
type identityFlags struct {
	name, url, description string
	remove                 bool
}

func addIdentityFlags(cmd *cobra.Command, f *identityFlags, whose string) {
	cmd.Flags().StringVar(&f.name, "display-name", "", fmt.Sprintf("%s display name (1 to %d bytes)", whose, chain.MaxIdentityNameLen))
	cmd.Flags().StringVar(&f.url, "url", "", fmt.Sprintf("a web address for more (at most %d bytes)", chain.MaxIdentityURLLen))
	cmd.Flags().StringVar(&f.description, "description", "", fmt.Sprintf("what it is (at most %d bytes; may span lines)", chain.MaxIdentityDescriptionLen))
	cmd.Flags().BoolVar(&f.remove, "remove", false, "remove the identity instead of setting one")
}

// identity returns the identity to send: the fields, or the empty one
// that removes it. Its checks are the chain's, said in terms of the flags.
func (f identityFlags) identity() (chain.Identity, error) {
	id := chain.Identity{Name: f.name, URL: f.url, Description: f.description}
	if f.remove {
		if !id.Empty() {
			return chain.Identity{}, errors.New("--remove takes no --display-name, --url or --description")
		}
		return id, nil
	}
	if id.Name == "" {
		return chain.Identity{}, fmt.Errorf("give --display-name (1 to %d bytes), or --remove to remove the identity", chain.MaxIdentityNameLen)
	}
	for _, x := range []struct {
		flag, v string
		max     int
	}{{"--display-name", id.Name, chain.MaxIdentityNameLen}, {"--url", id.URL, chain.MaxIdentityURLLen}, {"--description", id.Description, chain.MaxIdentityDescriptionLen}} {
		if len(x.v) > x.max {
			return chain.Identity{}, fmt.Errorf("%s is %d bytes: at most %d", x.flag, len(x.v), x.max)
		}
	}
	if err := id.Check(); err != nil {
		return chain.Identity{}, fmt.Errorf("%s (only the description may contain newlines)", strings.TrimPrefix(err.Error(), chain.ErrInvalidIdentity.Error()+": "))
	}
	return id, nil
}

func (a *app) walletSetIdentity() *cobra.Command {
	var f chainFlags
	var k keyFlags
	var idf identityFlags
	var id chain.Identity
	cmd := &cobra.Command{
		Use:   "set-identity",
		Short: "Set (or --remove) the coldkey's public identity: a name, a URL and a description",
		Long: `Set the wallet's coldkey identity, which the metagraph shows beside the
coldkey's neurons. The coldkey must own a hotkey registered on some subnet
(as in subtensor); removing an identity (--remove) needs none. The name is 1 to
64 bytes, the URL at most 256, the description at most 1024, UTF-8 without
control characters (the description may contain newlines). The only cost is the
transaction.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := a.coldkey(&k)
			if err != nil {
				return err
			}
			msg := &chainpb.Msg{Sum: &chainpb.Msg_SetIdentity{SetIdentity: &chainpb.SetIdentity{Name: id.Name, Url: id.URL, Description: id.Description}}}
			return a.sendWith(cmd, &f, key, msg)
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	addWalletFlag(cmd, &k.wallet, "wallet whose coldkey signs")
	cmd.Flags().StringVar(&k.passwordFile, "password-file", "", "read the coldkey password from this file")
	addIdentityFlags(cmd, &idf, "the coldkey's")
	addCheck(cmd, func() (err error) {
		id, err = idf.identity()
		return err
	})
	return cmd
}

// identityOut is an identity as the get-identity commands print it.
type identityOut struct {
	Coldkey string `json:"coldkey,omitempty"`
	Netuid  *int   `json:"netuid,omitempty"`
	chain.Identity
}

func printIdentity(w io.Writer, first []string, id chain.Identity) error {
	rows := [][]string{first, {"name", id.Name}}
	if id.URL != "" {
		rows = append(rows, []string{"url", id.URL})
	}
	for i, line := range strings.Split(id.Description, "\n") {
		if id.Description == "" {
			break
		}
		label := ""
		if i == 0 {
			label = "description"
		}
		rows = append(rows, []string{label, line})
	}
	return table(w, rows)
}

func (a *app) walletGetIdentity() *cobra.Command {
	var f chainFlags
	var name, address string
	cmd := &cobra.Command{
		Use:   "get-identity",
		Short: "Show a coldkey's identity (the wallet's, or --address ADDRESS)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var addr wallet.Address
			if address != "" {
				var err error
				if addr, _, err = wallet.ParseAddress(address); err != nil {
					return usageError(fmt.Errorf("--address %q: %w", address, err))
				}
			} else {
				var err error
				if addr, err = a.coldkeyAddress(name); err != nil {
					return err
				}
			}
			return a.withChain(cmd, &f, func(ctx context.Context, c *comet.Client) error {
				id, err := c.Identity(ctx, addr)
				if isNotFound(err) {
					return fmt.Errorf("%s has no identity (its owner sets one with wallet set-identity)", addr)
				}
				if err != nil {
					return err
				}
				if f.json {
					return writeJSON(cmd.OutOrStdout(), identityOut{Coldkey: addr.String(), Identity: id})
				}
				return printIdentity(cmd.OutOrStdout(), []string{"coldkey", addr.String()}, id)
			})
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	addWalletFlag(cmd, &name, "wallet whose coldkey's identity to show")
	cmd.Flags().StringVar(&address, "address", "", "any coldkey address instead of the wallet's")
	cmd.MarkFlagsMutuallyExclusive("wallet", "address")
	return cmd
}

func (a *app) subnetsSetIdentity() *cobra.Command {
	var f chainFlags
	var k keyFlags
	var netuid uint16
	var idf identityFlags
	var id chain.Identity
	cmd := &cobra.Command{
		Use:   "set-identity",
		Short: "Set (or --remove) a subnet's public identity (signed by the subnet's owner)",
		Long: `Set a subnet's identity, which subnets list, subnets get-identity and the
metagraph show. Only the subnet's owner coldkey may set or remove it (not the
chain root, as in subtensor); the root network has none. The name is 1 to 64
bytes, the URL at most 256, the description at most 1024, UTF-8 without control
characters (the description may contain newlines).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := a.coldkey(&k)
			if err != nil {
				return err
			}
			msg := &chainpb.Msg{Sum: &chainpb.Msg_SetSubnetIdentity{SetSubnetIdentity: &chainpb.SetSubnetIdentity{Netuid: uint32(netuid), Name: id.Name, Url: id.URL, Description: id.Description}}}
			return a.sendWith(cmd, &f, key, msg)
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	addColdkeyFlags(cmd, &k)
	netuidFlag(cmd, &netuid)
	addIdentityFlags(cmd, &idf, "the subnet's")
	addCheck(cmd, func() (err error) {
		if netuid == chain.RootNetuid {
			return errors.New("--netuid 0 is the root network, which has no identity")
		}
		id, err = idf.identity()
		return err
	})
	return cmd
}

func (a *app) subnetsGetIdentity() *cobra.Command {
	var f chainFlags
	var netuid uint16
	cmd := &cobra.Command{
		Use:   "get-identity",
		Short: "Show a subnet's identity",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withChain(cmd, &f, func(ctx context.Context, c *comet.Client) error {
				if _, err := c.Subnet(ctx, netuid); isNotFound(err) {
					return fmt.Errorf("there is no subnet %d", netuid)
				}
				id, err := c.SubnetIdentity(ctx, netuid)
				if isNotFound(err) {
					return fmt.Errorf("subnet %d has no identity (its owner sets one with subnets set-identity)", netuid)
				}
				if err != nil {
					return err
				}
				if f.json {
					n := int(netuid)
					return writeJSON(cmd.OutOrStdout(), identityOut{Netuid: &n, Identity: id})
				}
				return printIdentity(cmd.OutOrStdout(), []string{"netuid", strconv.Itoa(int(netuid))}, id)
			})
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	netuidFlag(cmd, &netuid)
	return cmd
}

// identityName is a subnet's identity name for subnets list, or "".
func identityName(id *chain.Identity) string {
	if id == nil {
		return ""
	}
	return id.Name
}

// printSubnetIdentityHeader prints the subnet's identity under the
// metagraph's first line.
func printSubnetIdentityHeader(w io.Writer, id *chain.Identity) {
	if id == nil {
		return
	}
	line := "identity: " + id.Name
	if id.URL != "" {
		line += " <" + id.URL + ">"
	}
	fmt.Fprintln(w, line)
	for _, l := range strings.Split(id.Description, "\n") {
		if id.Description != "" {
			fmt.Fprintln(w, "  "+l)
		}
	}
}

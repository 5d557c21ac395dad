package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chainlink/comet"
)

func frac(v uint16) string { return strconv.FormatFloat(float64(v)/65535, 'f', 4, 64) }

func (a *app) metagraphCommand() *cobra.Command {
	var f chainFlags
	var netuid uint16
	var lite bool
	cmd := &cobra.Command{
		Use:   "metagraph",
		Short: "Show a subnet's metagraph: every neuron's stake, rank, trust, incentive, dividends and emission",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withChain(cmd, &f, func(ctx context.Context, c *comet.Client) error {
				m, err := c.Metagraph(ctx, netuid, lite)
				if err != nil {
					return err
				}
				em, err := subnetEmission(ctx, c, netuid)
				if err != nil {
					return err
				}
				if f.json {
					return writeJSON(cmd.OutOrStdout(), metagraphOut{Metagraph: m, metagraphEmission: em})
				}
				return printMetagraph(cmd, m, em, &f)
			})
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	netuidFlag(cmd, &netuid)
	cmd.Flags().BoolVar(&lite, "lite", false, "leave out weights, bonds, commitments and owner identities")
	return cmd
}

// metagraphEmission is the subnet's share of block emission, as the last
// root epoch set it.
type metagraphEmission struct {
	EmissionPerBlock uint64  `json:"emission_per_block"`
	EmissionPercent  float64 `json:"emission_percent"`
}

// metagraphOut is "metagraph --json": the chain's metagraph and the
// subnet's emission share.
type metagraphOut struct {
	*chain.Metagraph
	metagraphEmission
}

func subnetEmission(ctx context.Context, c *comet.Client, netuid uint16) (metagraphEmission, error) {
	sub, err := c.Subnet(ctx, netuid)
	if err != nil {
		return metagraphEmission{}, err
	}
	be, err := blockEmission(ctx, c)
	if err != nil {
		return metagraphEmission{}, err
	}
	return metagraphEmission{EmissionPerBlock: sub.EmissionPerBlock, EmissionPercent: emissionPercent(sub.EmissionPerBlock, be)}, nil
}

func printMetagraph(cmd *cobra.Command, m *chain.Metagraph, em metagraphEmission, f *chainFlags) error {
	fmt.Fprintf(cmd.OutOrStdout(), "subnet %d at block %d: %d neurons, emission %.2f%% of block emission (%s per block)\n",
		m.Netuid, m.Block, m.N, em.EmissionPercent, f.amount(em.EmissionPerBlock))
	printSubnetIdentityHeader(cmd.OutOrStdout(), m.SubnetIdentity)
	rows := [][]string{{"UID", "STAKE", "RANK", "TRUST", "CONSENSUS", "INCENTIVE", "DIVIDENDS", "V-TRUST", "EMISSION", "VPERMIT", "ACTIVE", "UPDATED", "HOTKEY", "AXON"}}
	for i := range m.N {
		axon := ""
		if a := m.Axons[i]; a != nil && len(a.Multiaddrs) > 0 {
			axon = a.Multiaddrs[0] + "/p2p/" + a.PeerID
		}
		rows = append(rows, []string{
			strconv.Itoa(i), f.amount(m.Stake[i]), frac(m.Ranks[i]), frac(m.Trust[i]), frac(m.Consensus[i]),
			frac(m.Incentive[i]), frac(m.Dividends[i]), frac(m.ValidatorTrust[i]), f.amount(m.Emission[i]),
			strconv.FormatBool(m.ValidatorPermit[i]), strconv.FormatBool(m.Active[i]), strconv.FormatUint(m.LastUpdate[i], 10),
			m.Hotkeys[i].String(), axon,
		})
	}
	if err := table(cmd.OutOrStdout(), rows); err != nil {
		return err
	}
	if err := printMetagraphIdentities(cmd.OutOrStdout(), m); err != nil {
		return err
	}
	// The full metagraph ends with the neurons' commitments.
	var commits [][]string
	for i, c := range m.Commitments {
		if c != nil {
			o := toCommitmentOut(chain.CommitmentInfo{Commitment: *c})
			commits = append(commits, []string{strconv.Itoa(i), strconv.FormatUint(c.Block, 10), o.shown()})
		}
	}
	if len(commits) == 0 {
		return nil
	}
	fmt.Fprintln(cmd.OutOrStdout(), "\ncommitments:")
	return table(cmd.OutOrStdout(), append([][]string{{"UID", "BLOCK", "DATA"}}, commits...))
}

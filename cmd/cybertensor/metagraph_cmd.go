package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/chainlink/comet"
)

func frac(v uint16) string { return strconv.FormatFloat(float64(v)/65535, 'f', 4, 64) }

func (a *app) metagraphCommand() *cobra.Command {
	var f chainFlags
	var netuid uint16
	var block uint64
	var fieldList string
	var lite, full bool
	var mechanism uint8
	cmd := &cobra.Command{
		Use:   "metagraph",
		Short: "Show a subnet's metagraph: every neuron's stake, rank, trust, incentive, dividends and emission",
		Long: `Show a subnet's metagraph, fetched in one query that returns only the chosen
columns, at the latest block or at --block H.

By default the metagraph is lite: every column but the weights, bonds,
commitments and the owners' identity names. --fields chooses columns (comma-separated: ` + strings.Join(chain.MetagraphFieldNames(), ", ") + `;
a singular such as "uid" also works, "lite" is the default set, "all" every
column); --full is --fields all. A node answers past blocks within its
history window (cybertensor chain run --history-blocks, default 10,000
blocks); an older --block is refused naming the oldest block it keeps.

A subnet with several incentive mechanisms (subnets mechanisms get) has
their share-weighted incentive in the INCENTIVE column and each one's in an
"incentive per mechanism" section (JSON: mechanism_incentive, indexed
[mechanism][uid]); --mechanism M shows mechanism M's incentive in the
INCENTIVE column instead (JSON: incentive, with "mechanism": M).`,
		Example: `  cybertensor metagraph --netuid 1
  cybertensor metagraph --netuid 1 --fields uid,stake,incentive,dividends,emission --json
  cybertensor metagraph --netuid 1 --block 1200 --full
  cybertensor metagraph --netuid 1 --mechanism 1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fields, err := metagraphFields(cmd, fieldList, lite, full)
			if err != nil {
				return usageError(err)
			}
			byMechanism := cmd.Flags().Changed("mechanism")
			if byMechanism {
				incentive, _ := chain.ParseMetagraphFields("incentive")
				fields |= incentive
			}
			return a.withChain(cmd, &f, func(ctx context.Context, c *comet.Client) error {
				m, err := c.MetagraphAt(ctx, chainlink.MetagraphQuery{Netuid: netuid, Height: block, Fields: fields})
				if err != nil {
					return err
				}
				be, err := blockEmission(ctx, c)
				if err != nil {
					return err
				}
				share := emissionPercent(m.EmissionPerBlock, be)
				if byMechanism {
					if err := selectMechanism(m, mechanism); err != nil {
						return err
					}
				}
				if f.json {
					b, err := m.ColumnsJSON()
					if err != nil {
						return err
					}
					// The subnet's share of block emission, next to the
					// chain's emission_per_block.
					b = append(fmt.Appendf(b[:len(b)-1], `,"emission_percent":%s`, strconv.FormatFloat(share, 'f', -1, 64)), '}')
					if byMechanism {
						b = append(fmt.Appendf(b[:len(b)-1], `,"mechanism":%d`, mechanism), '}')
					}
					return writeJSON(cmd.OutOrStdout(), json.RawMessage(b))
				}
				if err := printMetagraph(cmd, m, fields, share, &f); err != nil || !byMechanism {
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "(INCENTIVE is mechanism %d's)\n", mechanism)
				return err
			})
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	netuidFlag(cmd, &netuid)
	cmd.Flags().Uint64Var(&block, "block", 0, "show the metagraph as it was after this block (default: the latest)")
	cmd.Flags().StringVar(&fieldList, "fields", "", "comma-separated columns to fetch (default: lite, every column but weights, bonds, commitments and identity names; \"all\" for every one)")
	cmd.Flags().BoolVar(&full, "full", false, "fetch every column, weights, bonds, commitments and identity names included (--fields all)")
	cmd.Flags().BoolVar(&lite, "lite", false, "fetch every column but weights, bonds, commitments and identity names (the default)")
	cmd.Flags().Uint8Var(&mechanism, "mechanism", 0, "show this incentive mechanism's incentive in the incentive column (see subnets mechanisms get)")
	return cmd
}

// selectMechanism makes m's incentive column mechanism mech's: m then
// describes that mechanism alone.
func selectMechanism(m *chain.Metagraph, mech uint8) error {
	count := max(len(m.MechanismIncentive), 1)
	if int(mech) >= count {
		return usageError(fmt.Errorf("--mechanism %d: subnet %d runs %d mechanism(s), 0 to %d", mech, m.Netuid, count, count-1))
	}
	if m.MechanismIncentive != nil {
		m.Incentive = m.MechanismIncentive[mech]
		m.MechanismIncentive = nil
	}
	return nil
}

// metagraphFields reads --fields, --lite and --full, of which at most one
// may be given.
func metagraphFields(cmd *cobra.Command, list string, lite, full bool) (chain.MetagraphFields, error) {
	given := 0
	for _, name := range []string{"fields", "lite", "full"} {
		if cmd.Flags().Changed(name) {
			given++
		}
	}
	if given > 1 {
		return 0, errors.New("give one of --fields, --full and --lite")
	}
	switch {
	case full:
		return chain.AllMetagraphFields, nil
	case cmd.Flags().Changed("fields"):
		if list == "" {
			return 0, errors.New("--fields is empty; name columns such as uid,stake,incentive, or all")
		}
		f, err := chain.ParseMetagraphFields(list)
		if err != nil {
			return 0, fmt.Errorf("--fields: %w", err)
		}
		return f, nil
	}
	return chain.LiteMetagraphFields, nil
}

// metagraphColumn is one column of the metagraph table.
type metagraphColumn struct {
	field string
	head  string
	cell  func(m *chain.Metagraph, i int) string
}

func metagraphColumns(f *chainFlags) []metagraphColumn {
	rowLen := func(rows [][]chain.Entry, i int) string { return strconv.Itoa(len(rows[i])) }
	return []metagraphColumn{
		{"uids", "UID", func(m *chain.Metagraph, i int) string { return strconv.Itoa(int(m.UIDs[i])) }},
		{"stake", "STAKE", func(m *chain.Metagraph, i int) string { return f.amount(m.Stake[i]) }},
		{"ranks", "RANK", func(m *chain.Metagraph, i int) string { return frac(m.Ranks[i]) }},
		{"trust", "TRUST", func(m *chain.Metagraph, i int) string { return frac(m.Trust[i]) }},
		{"consensus", "CONSENSUS", func(m *chain.Metagraph, i int) string { return frac(m.Consensus[i]) }},
		{"incentive", "INCENTIVE", func(m *chain.Metagraph, i int) string { return frac(m.Incentive[i]) }},
		{"dividends", "DIVIDENDS", func(m *chain.Metagraph, i int) string { return frac(m.Dividends[i]) }},
		{"validator_trust", "V-TRUST", func(m *chain.Metagraph, i int) string { return frac(m.ValidatorTrust[i]) }},
		{"pruning_scores", "PRUNING", func(m *chain.Metagraph, i int) string { return frac(m.PruningScores[i]) }},
		{"emission", "EMISSION", func(m *chain.Metagraph, i int) string { return f.amount(m.Emission[i]) }},
		{"validator_permit", "VPERMIT", func(m *chain.Metagraph, i int) string { return strconv.FormatBool(m.ValidatorPermit[i]) }},
		{"active", "ACTIVE", func(m *chain.Metagraph, i int) string { return strconv.FormatBool(m.Active[i]) }},
		{"last_update", "UPDATED", func(m *chain.Metagraph, i int) string { return strconv.FormatUint(m.LastUpdate[i], 10) }},
		{"registered_at", "REGISTERED", func(m *chain.Metagraph, i int) string { return strconv.FormatUint(m.RegisteredAt[i], 10) }},
		{"weights", "WEIGHTS", func(m *chain.Metagraph, i int) string { return rowLen(m.Weights, i) }},
		{"bonds", "BONDS", func(m *chain.Metagraph, i int) string { return rowLen(m.Bonds, i) }},
		{"hotkeys", "HOTKEY", func(m *chain.Metagraph, i int) string { return m.Hotkeys[i].String() }},
		{"coldkeys", "COLDKEY", func(m *chain.Metagraph, i int) string { return m.Coldkeys[i].String() }},
		{"identity_names", "IDENTITY", func(m *chain.Metagraph, i int) string { return m.IdentityNames[i] }},
		{"axons", "AXON", func(m *chain.Metagraph, i int) string {
			if a := m.Axons[i]; a != nil && len(a.Multiaddrs) > 0 {
				return a.Multiaddrs[0] + "/p2p/" + a.PeerID
			}
			return ""
		}},
	}
}

func printMetagraph(cmd *cobra.Command, m *chain.Metagraph, fields chain.MetagraphFields, share float64, f *chainFlags) error {
	fmt.Fprintf(cmd.OutOrStdout(), "subnet %d at block %d: %d neurons, emission %.2f%% of block emission (%s per block)\n",
		m.Netuid, m.Block, m.N, share, f.amount(m.EmissionPerBlock))
	printSubnetIdentityHeader(cmd.OutOrStdout(), m.SubnetIdentity)
	var cols []metagraphColumn
	for _, c := range metagraphColumns(f) {
		if bit, _ := chain.ParseMetagraphFields(c.field); fields.Has(bit) {
			cols = append(cols, c)
		}
	}
	if len(cols) > 0 {
		head := make([]string, len(cols))
		for j, c := range cols {
			head[j] = c.head
		}
		rows := [][]string{head}
		for i := range m.N {
			row := make([]string, len(cols))
			for j, c := range cols {
				row[j] = c.cell(m, i)
			}
			rows = append(rows, row)
		}
		if err := table(cmd.OutOrStdout(), rows); err != nil {
			return err
		}
	}
	// So is each mechanism's incentive, for a subnet running several.
	if mi := m.MechanismIncentive; mi != nil {
		fmt.Fprintln(cmd.OutOrStdout(), "\nincentive per mechanism:")
		head := []string{"UID"}
		for j := range mi {
			head = append(head, "M"+strconv.Itoa(j))
		}
		rows := [][]string{head}
		for i := range m.N {
			row := []string{strconv.Itoa(i)}
			for _, col := range mi {
				row = append(row, frac(col[i]))
			}
			rows = append(rows, row)
		}
		if err := table(cmd.OutOrStdout(), rows); err != nil {
			return err
		}
	}
	// The commitments column is a section of its own.
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

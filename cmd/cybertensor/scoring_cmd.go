package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/cybertensor/cybertensor/scoring"
)

// maxEpochInput bounds what "scoring epoch" reads: a 65,536-uid subnet
// with dense validator rows fits well within it.
const maxEpochInput = 1 << 30

func (a *app) scoringCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "scoring", Short: "Evaluate Yuma consensus offline"}
	cmd.AddCommand(a.scoringEpoch())
	return cmd
}

func (a *app) scoringEpoch() *cobra.Command {
	var in string
	cmd := &cobra.Command{
		Use:   "epoch",
		Short: "Run one Yuma consensus epoch on a subnet described in JSON (shared/spec/epoch.md)",
		Long: `Read the spec's epoch input JSON from --in FILE (or --in - for stdin) and print
the output JSON. Invalid input is reported on stderr, naming the field, with
exit status 2; the same input gives byte-identical output on every machine.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var r io.Reader
			if in == "-" {
				r = cmd.InOrStdin()
			} else {
				f, err := os.Open(in)
				if err != nil {
					return usageError(fmt.Errorf("--in: %w", err))
				}
				defer f.Close()
				r = f
			}
			data, err := io.ReadAll(io.LimitReader(r, maxEpochInput+1))
			if err != nil {
				return usageError(fmt.Errorf("reading input: %w", err))
			}
			if len(data) > maxEpochInput {
				return usageError(fmt.Errorf("input larger than %d bytes", maxEpochInput))
			}
			input, err := scoring.ParseInput(data)
			if err != nil {
				return usageError(err)
			}
			out, err := scoring.Epoch(input)
			if err != nil {
				return usageError(err)
			}
			b, err := out.MarshalJSON()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
			return err
		},
	}
	cmd.Flags().StringVar(&in, "in", "", "input JSON file, or - for stdin")
	cmd.MarkFlagRequired("in")
	return cmd
}

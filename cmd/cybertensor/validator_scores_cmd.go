package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cybertensor/cybertensor/neuron"
	"github.com/cybertensor/cybertensor/wallet"
)

// validatorScores prints what a validator's state file says: it is written
// atomically, by a running validator after its query rounds (at most every
// 5 s) and whenever it sets weights, so reading it needs no running
// process, no lock and no chain.
func (a *app) validatorScores() *cobra.Command {
	var walletName, hotkey string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "scores",
		Short: "Show a validator's moving averages, its miners' last answers and the weights it last set",
		Long: `Show what the validator of --wallet/--hotkey keeps in
<home>/neurons/WALLET/HOTKEY/validator-state.json: each miner's moving average
score, its last answers (status: OK, INTERNAL, TIMEOUT, UNAVAILABLE…; the reason
the miner gave or why the query failed; the score it earned; "(organic)" for an
answer to a gateway's client, scored by organic scoring), and the weights
the validator last set or revealed, with the block and time.

The validator writes the file after its query rounds and organic scores (at most every 5 s), when
it sets weights and when it stops; this command reads it whether the validator
runs or not, and needs no chain. "saved" says how fresh it is.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if a.homeErr != nil {
				return a.homeErr
			}
			dir := filepath.Join(a.home, "neurons", walletName, hotkey)
			st, err := neuron.ReadValidatorStatus(dir)
			if errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("no validator state in %s: run \"cybertensor validator run --wallet %s --hotkey %s\" first", dir, walletName, hotkey)
			}
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), st)
			}
			return printValidatorStatus(cmd, st)
		},
	}
	cmd.Flags().StringVar(&walletName, "wallet", "default", "wallet of the validator's hotkey")
	cmd.Flags().StringVar(&hotkey, "hotkey", wallet.DefaultHotkey, "the validator's hotkey name")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printValidatorStatus(cmd *cobra.Command, st *neuron.ValidatorStatus) error {
	w := cmd.OutOrStdout()
	saved := "unknown"
	if !st.Saved.IsZero() {
		saved = st.Saved.Local().Format(time.RFC3339)
	}
	fmt.Fprintf(w, "validator %s on subnet %d (state saved %s)\n", st.Hotkey, st.Netuid, saved)
	answers := map[uint16][]neuron.Answer{}
	for _, a := range st.Answers {
		answers[a.UID] = append(answers[a.UID], a)
	}
	uids := map[uint16]bool{}
	rows := [][]string{{"UID", "HOTKEY", "AVERAGE", "LAST ANSWERS (newest last)", "LAST REASON"}}
	add := func(uid uint16, hot string, avg string) {
		var statuses []string
		reason := ""
		for _, a := range answers[uid] {
			st := fmt.Sprintf("%s %.3f", a.Status, a.Score)
			if a.Organic {
				st += " (organic)"
			}
			statuses = append(statuses, st)
			if a.Reason != "" {
				reason = a.Reason
			}
		}
		rows = append(rows, []string{fmt.Sprint(uid), hot, avg, strings.Join(statuses, ", "), reason})
	}
	for _, e := range st.Scores {
		uids[e.UID] = true
		add(e.UID, e.Holder, fmt.Sprintf("%.4f", e.Value))
	}
	for _, a := range st.Answers {
		if !uids[a.UID] {
			uids[a.UID] = true
			add(a.UID, a.Hotkey, "-")
		}
	}
	if err := table(w, rows); err != nil {
		return err
	}
	switch wt := st.Weights; {
	case wt == nil:
		fmt.Fprintln(w, "weights: none set yet")
	default:
		how := "set"
		if wt.Revealed {
			how = "revealed"
		}
		var parts []string
		for i, u := range wt.UIDs {
			parts = append(parts, fmt.Sprintf("%d=%d", u, wt.Values[i]))
		}
		fmt.Fprintf(w, "weights %s at block %d (%s): %s\n", how, wt.Block, time.UnixMilli(wt.Time).Local().Format(time.RFC3339), strings.Join(parts, " "))
	}
	if st.Pending {
		fmt.Fprintln(w, "a weight commit waits to be revealed")
	}
	return nil
}

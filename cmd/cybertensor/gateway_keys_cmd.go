package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cybertensor/cybertensor/gateway/metering"
	"github.com/cybertensor/cybertensor/internal/lockfile"
)

// defaultGatewayKeysFile and defaultGatewayUsageFile are where the gateway
// keeps its API keys and its usage ledger under the cybertensor home.
func defaultGatewayKeysFile(home string) string  { return filepath.Join(home, "gateway", "keys.json") }
func defaultGatewayUsageFile(home string) string { return filepath.Join(home, "gateway", "usage.db") }

// gatewayAdminCommands are the gateway's administration subcommands: API
// keys and the usage ledger. They work whether the gateway runs or not
// (keys changes reach a running gateway within a second; the usage ledger
// of a running gateway is read through its admin address).
func (a *app) gatewayAdminCommands() []*cobra.Command {
	keys := &cobra.Command{
		Use:   "keys",
		Short: "Create, list and revoke the gateway's API keys",
		Long: `Manage the API keys applications present to the gateway (as "Authorization:
Bearer SECRET"). The key file (default <home>/gateway/keys.json, mode 0600) keeps
each key's ID, name, limits and the SHA-256 of its secret, never the secret: add
prints it once. A running gateway sees added and revoked keys within a second.`,
	}
	keys.AddCommand(a.gatewayKeysAdd(), a.gatewayKeysList(), a.gatewayKeysRevoke())
	return []*cobra.Command{keys, a.gatewayUsage()}
}

// keysFileFlag adds --keys to cmd.
func keysFileFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVar(p, "keys", "", "the key file (default <home>/gateway/keys.json)")
}

// openKeyStore opens the key file of --keys (or the default), creating it
// on the first change.
func (a *app) openKeyStore(path string) (*metering.KeyStore, error) {
	if path == "" {
		if a.homeErr != nil {
			return nil, a.homeErr
		}
		path = defaultGatewayKeysFile(a.home)
	}
	cfg := metering.DefaultKeyStoreConfig()
	cfg.Create, cfg.ReloadEvery, cfg.Logger = true, 0, a.log
	return metering.OpenKeyStore(path, cfg)
}

// apiKeyJSON is a key as the keys commands print it.
type apiKeyJSON struct {
	metering.Key
	// Secret is set only by keys add.
	Secret string `json:"secret,omitempty"`
	File   string `json:"file"`
}

func (a *app) gatewayKeysAdd() *cobra.Command {
	var file, name string
	var lim metering.Limits
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "add",
		Short: "Create an API key and print its secret (once)",
		Long: `Create an API key named --name with optional limits: --rps requests per second
with bursts of --burst (default: the rate rounded up), and quotas per UTC day of
--daily-requests requests and --daily-tokens tokens (prompt plus completion, as
the miners report them). 0 is no limit. The secret ("ct-…") is printed now and
never again: the file keeps only its hash.`,
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("burst") && !cmd.Flags().Changed("rps") {
				return usageError(errors.New("--burst needs --rps"))
			}
			if lim.RPS > 0 && !cmd.Flags().Changed("burst") {
				lim.Burst = int64(math.Ceil(min(lim.RPS, metering.MaxBurst)))
			}
			if err := lim.Validate(); err != nil {
				return usageError(err)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := a.openKeyStore(file)
			if err != nil {
				return err
			}
			k, secret, err := s.Add(name, lim)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), apiKeyJSON{Key: k, Secret: secret, File: s.Path()})
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "key %s (%s) added to %s, limits: %s\n", k.ID, k.Name, s.Path(), limitsText(k.Limits))
			fmt.Fprintf(w, "secret: %s\n", secret)
			fmt.Fprintln(w, "Store the secret now: it is not kept and cannot be shown again.")
			return nil
		},
	}
	keysFileFlag(cmd, &file)
	cmd.Flags().StringVar(&name, "name", "", "what the key is for (required, up to 64 bytes)")
	cmd.Flags().Float64Var(&lim.RPS, "rps", 0, "rate limit in requests per second (0: none)")
	cmd.Flags().Int64Var(&lim.Burst, "burst", 0, "requests allowed at once after a pause (default: --rps rounded up)")
	cmd.Flags().Int64Var(&lim.DailyRequests, "daily-requests", 0, "requests per UTC day (0: no quota)")
	cmd.Flags().Int64Var(&lim.DailyTokens, "daily-tokens", 0, "tokens per UTC day (0: no quota)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.MarkFlagRequired("name")
	return cmd
}

// limitsText says a key's limits in words.
func limitsText(l metering.Limits) string {
	var parts []string
	if l.RPS > 0 {
		parts = append(parts, fmt.Sprintf("%s/s burst %d", strconv.FormatFloat(l.RPS, 'g', -1, 64), l.Burst))
	}
	if l.DailyRequests > 0 {
		parts = append(parts, fmt.Sprintf("%d requests/day", l.DailyRequests))
	}
	if l.DailyTokens > 0 {
		parts = append(parts, fmt.Sprintf("%d tokens/day", l.DailyTokens))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func (a *app) gatewayKeysList() *cobra.Command {
	var file string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the API keys (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := a.openKeyStore(file)
			if err != nil {
				return err
			}
			keys := s.Keys()
			if asJSON {
				out := make([]apiKeyJSON, 0, len(keys))
				for _, k := range keys {
					out = append(out, apiKeyJSON{Key: k, File: s.Path()})
				}
				return writeJSON(cmd.OutOrStdout(), out)
			}
			if len(keys) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "no keys in %s (add one with \"cybertensor gateway keys add --name NAME\")\n", s.Path())
				return nil
			}
			rows := [][]string{{"ID", "NAME", "CREATED", "LIMITS", "STATE"}}
			for _, k := range keys {
				state := "active"
				if k.Revoked {
					state = "revoked " + k.RevokedAt.Format(time.RFC3339)
				}
				rows = append(rows, []string{k.ID, k.Name, k.Created.Format(time.RFC3339), limitsText(k.Limits), state})
			}
			return table(cmd.OutOrStdout(), rows)
		},
	}
	keysFileFlag(cmd, &file)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) gatewayKeysRevoke() *cobra.Command {
	var file string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API key (a running gateway refuses it within a second)",
		Long: `Revoke the API key with this ID. It stays in the file, marked revoked, so its
usage stays attributed; revoking it again changes nothing.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.openKeyStore(file)
			if err != nil {
				return err
			}
			k, err := s.Revoke(args[0])
			if errors.Is(err, metering.ErrUnknownKey) {
				return usageError(fmt.Errorf("no key %q in %s (see \"cybertensor gateway keys list\")", args[0], s.Path()))
			}
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), apiKeyJSON{Key: k, File: s.Path()})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "key %s (%s) revoked at %s\n", k.ID, k.Name, k.RevokedAt.Format(time.RFC3339))
			return nil
		},
	}
	keysFileFlag(cmd, &file)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// usageEntryJSON is a ledger entry as gateway usage prints it.
type usageEntryJSON struct {
	metering.Entry
	// ReceiptCheck, with --verify: "valid", "none" or why it is invalid.
	ReceiptCheck string `json:"receipt_check,omitempty"`
}

// usageJSON is what gateway usage --json prints.
type usageJSON struct {
	Ledger  string           `json:"ledger"`
	Key     string           `json:"key,omitempty"`
	Since   time.Time        `json:"since,omitzero"`
	Until   time.Time        `json:"until,omitzero"`
	Summary metering.Summary `json:"summary"`
	// Receipts, with --verify: how many entries hold a valid receipt, an
	// invalid one, none.
	Receipts *receiptCounts   `json:"receipts,omitempty"`
	Entries  []usageEntryJSON `json:"entries"`
}

type receiptCounts struct {
	Valid   int `json:"valid"`
	Invalid int `json:"invalid"`
	None    int `json:"none"`
}

// parseSince reads --since/--until: an RFC 3339 time, a UTC date
// (2026-12-06), or a duration before now (24h).
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time, a date (2006-01-02, UTC) or a duration before now (24h)", s)
}

func (a *app) gatewayUsage() *cobra.Command {
	var file, key, since, until, adminURL, adminToken string
	var asJSON, verify bool
	cmd := &cobra.Command{
		Use:   "usage",
		Short: "Show what API keys consumed, per key, per miner and per subnet, from the usage ledger",
		Long: `Read the gateway's usage ledger (default <home>/gateway/usage.db): every finished
request with its key, model, miner, status, tokens, bytes, latency and the miner's
signed receipt. Prints totals, per key, per miner and per subnet (requests, failures, tokens,
bytes, latency p50/p95); --json adds every entry.

--verify checks each entry's receipt against the miner's peer ID (the miner's
public key is in it): a valid receipt is the miner's own signed statement that
it answered with that status. Exit status 1 if any receipt does not verify.

Entries are read and printed a page at a time (memory holds one page), as of
the ledger's last entry when usage starts: requests finished meanwhile are
left to the next run, so the summary counts exactly the entries printed.

A running gateway holds the ledger: then usage asks it, at the admin address
and with the token it recorded next to the ledger (admin.json, admin.token),
and prints the same. --admin URL asks that address instead of reading the
ledger (with the token of --admin-token, default the one next to the ledger).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			from, err := parseSince(since, now)
			if err != nil {
				return usageError(fmt.Errorf("--since %w", err))
			}
			to, err := parseSince(until, now)
			if err != nil {
				return usageError(fmt.Errorf("--until %w", err))
			}
			if file == "" {
				if a.homeErr != nil {
					return a.homeErr
				}
				file = defaultGatewayUsageFile(a.home)
			}
			out := usageJSON{Ledger: file, Key: key, Since: from, Until: to}
			q := metering.Query{KeyID: key, From: from, To: to}
			var invalid, checked int
			run := func(src usageSource, sourceLedger bool) (err error) {
				invalid, checked, err = writeUsage(cmd.Context(), cmd.OutOrStdout(), src, out, q, asJSON, verify, sourceLedger)
				return err
			}
			live := func(url, tokenFile string) error {
				if tokenFile == "" {
					tokenFile = gatewayAdminTokenFile(file)
				}
				// --admin names the gateway: its answer names the ledger.
				return run(liveUsage{url: url, tokenFile: tokenFile}, adminURL != "")
			}
			if adminURL != "" {
				if err := live(adminURL, adminToken); err != nil {
					return err
				}
			} else if err := func() error {
				if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("no usage ledger at %s (the gateway writes it as it serves requests)", file)
				}
				cfg := metering.DefaultLedgerConfig()
				cfg.ReadOnly, cfg.Logger = true, slog.New(slog.DiscardHandler)
				l, err := metering.OpenLedger(file, cfg)
				if errors.Is(err, lockfile.ErrInUse) {
					// A running gateway holds it: ask it.
					info, ierr := readGatewayAdminInfo(file)
					if ierr != nil {
						return fmt.Errorf("%w; and it cannot be asked: %v (start the gateway with its admin address on, the default)", inUseAs("the usage ledger "+file, err), ierr)
					}
					tok := adminToken
					if tok == "" {
						tok = info.TokenFile
					}
					return live(info.URL, tok)
				}
				if err != nil {
					return inUseAs("the usage ledger "+file, err)
				}
				defer l.Close()
				if err := run(ledgerUsage{l: l, pageEntries: metering.DefaultPageEntries}, false); err != nil {
					return fmt.Errorf("reading the usage ledger %s: %w", file, err)
				}
				return nil
			}(); err != nil {
				return err
			}
			if invalid > 0 {
				return fmt.Errorf("%d of %d receipts do not verify", invalid, checked)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "ledger", "", "the usage ledger (default <home>/gateway/usage.db)")
	cmd.Flags().StringVar(&key, "key", "", "only this API key's usage (default: every key)")
	cmd.Flags().StringVar(&since, "since", "", "from this time: RFC 3339, a UTC date (2026-12-06) or a duration before now (24h)")
	cmd.Flags().StringVar(&until, "until", "", "before this time (same forms as --since)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON, with every entry")
	cmd.Flags().BoolVar(&verify, "verify", false, "check every entry's miner receipt against the miner's peer ID")
	cmd.Flags().StringVar(&adminURL, "admin", "", "ask the running gateway at this admin URL (http://127.0.0.1:PORT) instead of reading the ledger (default: only when a running gateway holds the ledger, at the address it recorded)")
	cmd.Flags().StringVar(&adminToken, "admin-token", "", "the admin token file (default: the one the running gateway wrote next to the ledger)")
	addCheck(cmd, func() error {
		// A key no ledger can hold is refused as a running gateway would.
		if _, err := metering.ParseUsageQuery(metering.UsageQuery{Query: metering.Query{KeyID: key}}.Encode()); err != nil {
			return fmt.Errorf("--key: %w", err)
		}
		if adminURL != "" {
			return checkAdminURL(adminURL)
		}
		return nil
	})
	return cmd
}

// receiptCheck verifies e's receipt: "valid", "none" or why it is
// invalid, and for an invalid one the line naming the entry.
func receiptCheck(e metering.Entry) (check, bad string) {
	switch _, err := metering.VerifyReceipt(e.Usage); {
	case errors.Is(err, metering.ErrNoReceipt):
		return "none", ""
	case err != nil:
		return err.Error(), fmt.Sprintf("entry %d (request %s, miner %s): %v", e.Seq, e.RequestID, e.MinerPeer, err)
	}
	return "valid", ""
}

// writeUsage prints the usage q selects in src, with out's ledger, key
// and times (the ledger src names instead, with sourceLedger): the
// summary as a table, or (asJSON) as JSON with every entry. The JSON is
// what writeJSON prints of the whole usageJSON, written one entry at a
// time as pages arrive. --verify checks every receipt in a first pass
// (the counts come before the entries), and lists the invalid ones (a
// second pass). It returns how many receipts did not verify, of how many
// that held one.
func writeUsage(ctx context.Context, w io.Writer, src usageSource, out usageJSON, q metering.Query, asJSON, verify, sourceLedger bool) (invalid, checked int, err error) {
	sum, asOf, ledger, err := src.summary(ctx, q)
	if err != nil {
		return 0, 0, err
	}
	if sourceLedger && ledger != "" {
		out.Ledger = ledger
	}
	out.Summary = sum
	list := func(fn func(metering.Entry) error) error {
		return listUsage(ctx, src, q, asOf, sum.Total.Requests, fn)
	}
	var counts receiptCounts
	if verify {
		err := list(func(e metering.Entry) error {
			switch check, _ := receiptCheck(e); check {
			case "none":
				counts.None++
			case "valid":
				counts.Valid++
			default:
				counts.Invalid++
			}
			return nil
		})
		if err != nil {
			return 0, 0, err
		}
		out.Receipts = &counts
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	defer bw.Flush()
	if !asJSON {
		if err := printUsage(bw, out, nil); err != nil {
			return 0, 0, err
		}
		if counts.Invalid > 0 {
			err := list(func(e metering.Entry) error {
				if _, bad := receiptCheck(e); bad != "" {
					_, err := fmt.Fprintln(bw, "  "+bad)
					return err
				}
				return nil
			})
			if err != nil {
				return 0, 0, err
			}
		}
		return counts.Invalid, counts.Valid + counts.Invalid, bw.Flush()
	}
	out.Entries = []usageEntryJSON{}
	head, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return 0, 0, fmt.Errorf("encoding output: %w", err)
	}
	const emptyTail = "[]\n}"
	if !bytes.HasSuffix(head, []byte(emptyTail)) {
		return 0, 0, fmt.Errorf("encoding output: the entries are not last")
	}
	bw.Write(head[:len(head)-len(emptyTail)])
	bw.WriteString("[")
	n := 0
	err = list(func(e metering.Entry) error {
		je := usageEntryJSON{Entry: e}
		if verify {
			je.ReceiptCheck, _ = receiptCheck(e)
		}
		b, err := json.MarshalIndent(je, "    ", "  ")
		if err != nil {
			return fmt.Errorf("encoding entry %d: %w", e.Seq, err)
		}
		if n++; n == 1 {
			bw.WriteString("\n    ")
		} else {
			bw.WriteString(",\n    ")
		}
		_, err = bw.Write(b)
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	if n > 0 {
		bw.WriteString("\n  ")
	}
	if _, err := bw.WriteString("]\n}\n"); err != nil {
		return 0, 0, err
	}
	return counts.Invalid, counts.Valid + counts.Invalid, bw.Flush()
}

func printUsage(w io.Writer, u usageJSON, bad []string) error {
	s := u.Summary
	fmt.Fprintf(w, "%d requests in %s", s.Total.Requests, u.Ledger)
	if u.Key != "" {
		fmt.Fprintf(w, " for key %s", u.Key)
	}
	if !u.Since.IsZero() {
		fmt.Fprintf(w, " since %s", u.Since.Format(time.RFC3339))
	}
	if !u.Until.IsZero() {
		fmt.Fprintf(w, " until %s", u.Until.Format(time.RFC3339))
	}
	fmt.Fprintln(w)
	if s.Total.Requests == 0 {
		return nil
	}
	header := []string{"REQUESTS", "FAILURES", "PROMPT TOK", "COMPL TOK", "BYTES IN", "BYTES OUT", "P50", "P95", "RECEIPTS"}
	row := func(id string, t metering.Totals) []string {
		if id == "" {
			id = "-"
		}
		return []string{id, strconv.FormatInt(t.Requests, 10), strconv.FormatInt(t.Failures, 10),
			strconv.FormatInt(t.PromptTokens, 10), strconv.FormatInt(t.CompletionTokens, 10),
			strconv.FormatInt(t.RequestBytes, 10), strconv.FormatInt(t.ResponseBytes, 10),
			t.LatencyP50.Round(time.Microsecond).String(), t.LatencyP95.Round(time.Microsecond).String(),
			strconv.FormatInt(t.Receipts, 10)}
	}
	for _, g := range []struct {
		title  string
		groups []metering.Group
	}{{"KEY", s.Keys}, {"MINER", s.Miners}, {"SUBNET", s.Subnets}} {
		fmt.Fprintln(w)
		rows := [][]string{append([]string{g.title}, header...)}
		for _, x := range g.groups {
			rows = append(rows, row(x.ID, x.Totals))
		}
		rows = append(rows, row("total", s.Total))
		if err := table(w, rows); err != nil {
			return err
		}
	}
	if u.Receipts != nil {
		fmt.Fprintf(w, "\nreceipts: %d valid, %d invalid, %d none\n", u.Receipts.Valid, u.Receipts.Invalid, u.Receipts.None)
		for _, b := range bad {
			fmt.Fprintln(w, "  "+b)
		}
	}
	return nil
}

package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cybertensor/cybertensor/localnet"
	"github.com/cybertensor/cybertensor/subnet"
)

func (a *app) localnetCommand() *cobra.Command {
	cfg := localnet.DefaultConfig()
	var adversaries string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "localnet",
		Short: "Run a whole network in one process: chain, subnet, validators and miners",
		Long: `Run the embedded chain, built-in subnets, validators and miners as real
libp2p hosts on loopback, with optional adversaries, and show the metagraph as
epochs pass. On qa (the default) miners answer from the built-in knowledge
library with the retrieval model and validators ask questions they know the
answers to; on storage miners keep the validators' knowledge objects and prove
it on random byte ranges; on compute they solve hash-preimage jobs. Validators
score with their subnet spec's reward and set weights; Yuma consensus pays them.
  cybertensor localnet --subnets qa,storage,compute --adversaries lazy --for 60s

On model, miners are paid for language models: each honest miner trains a
charlm model on a share of the subnet's built-in corpus (the first on all of
it, each next on a quarter of the text before), publishes it in its knowledge
library and commits its CID on chain; validators fetch the committed models
and measure their loss on a sample of the corpus drawn each round, and the
best model earns the most. There the lazy adversary commits a model of a line
of lorem ipsum and the copier is a miner that commits the leader's CID later
(refused as a duplicate): both earn ~0. The summary ranks the models: each
miner's commitment, its loss as the first honest validator last measured it,
and its incentive (--json: "models").
  cybertensor localnet --subnets model --miners 5 --adversaries lazy,copier --epochs 10

With --gateway ADDR it also serves every subnet whose miners serve text.chat
(qa, and spec subnets serving text.generate or text.chat) through an
OpenAI-compatible API, each subnet as its first validator's hotkey, and prints
the base URL, an API key and every model (sn<N>/text.chat, sn<N>/text.embed):
those miners answer from the retrieval model, or from --upstream (an
OpenAI-compatible server such as llama.cpp, vLLM or Ollama). The validator
serving a subnet whose spec can judge an answer without an expected one (e.g.
examples/chat) scores --organic-fraction of those answers into its miners'
scores (organic scoring; docs/gateway.md).
  cybertensor localnet --gateway 127.0.0.1:8000
  cybertensor localnet --spec examples/chat/spec.yaml --gateway 127.0.0.1:8000 --upstream URL --upstream-model M

With --spec FILE (repeatable) it runs a subnet from a spec file, so a subnet
author sees their mechanism pay before deploying it: netuids after the
--subnets built-ins (which, with --spec, run only if --subnets is given). The
spec's honest miners answer its built-in synapses as above and its custom
synapses from the synapse's prompt with the --upstream model (required then:
a spec with a custom synapse is refused without it, or with a custom synapse
without a prompt); --adversaries lazy miners answer custom synapses with
schema-valid junk (a few random words, or the smallest JSON the answer schema
accepts). Validators run the spec's tasks, judge and reward, with the spec's
files read from its directory; its LLM judge asks --judge-url (default
--upstream's /v1, else the spec's url).
  cybertensor localnet --spec examples/summarize/spec.yaml --adversaries lazy \
      --upstream http://127.0.0.1:8080 --upstream-model llama3`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if adversaries != "" {
				cfg.Adversaries = strings.Split(adversaries, ",")
			}
			if len(cfg.Specs) > 0 && !cmd.Flags().Changed("subnets") {
				cfg.Subnets = nil // only the specs' subnets
			}
			cfg.Logger = a.log
			if !asJSON {
				cfg.Progress = cmd.OutOrStdout()
			} else {
				cfg.Progress = cmd.ErrOrStderr()
			}
			s, err := localnet.Run(cmd.Context(), cfg)
			if err != nil {
				return usageErrorIf(err)
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), s)
			}
			if g := s.Gateway; g != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "\ngateway %s: %d requests, %d failed, %d prompt and %d completion tokens, %d receipts (ledger %s)\n",
					g.URL, g.Usage.Requests, g.Usage.Failures, g.Usage.PromptTokens, g.Usage.CompletionTokens, g.Usage.Receipts, g.Ledger)
				for _, n := range s.Neurons {
					if n.Role == "validator" && n.Hotkey == g.Hotkey {
						fmt.Fprintf(cmd.OutOrStdout(), "its validator (uid %d) scored %d organic answers into its miners' scores\n", n.UID, n.OrganicScored)
					}
				}
			}
			out := cmd.OutOrStdout()
			paid := "no epoch has paid miners yet"
			if s.Timeline.FirstPaid > 0 {
				paid = fmt.Sprintf("first paying epoch at %v", s.Timeline.FirstPaid.Round(time.Millisecond))
			}
			if s.Timeline.MostPaid > 0 {
				paid += fmt.Sprintf(", 95%% of honest miners paid by epoch %d (%v)", s.Timeline.MostPaidEpoch, s.Timeline.MostPaid.Round(time.Millisecond))
			}
			fmt.Fprintf(out, "\nsummary after %d epochs (block %d): up in %v, first epoch at %v, %s\n", s.Epochs, s.Block,
				s.Timeline.Ready.Round(time.Millisecond), s.Timeline.FirstEpoch.Round(time.Millisecond), paid)
			rows := [][]string{{"SUBNET", "UID", "ROLE", "STAKE", "INCENTIVE", "DIVIDENDS", "EMISSION", "SERVED", "SENT", "HEARD", "SHARED", "FETCHED"}}
			for _, n := range s.Neurons {
				role := n.Role
				if n.Adversary != "" {
					role += "/" + n.Adversary
				}
				rows = append(rows, []string{fmt.Sprintf("%d %s", n.Netuid, n.Subnet), fmt.Sprint(n.UID), role, formatAmount(n.Stake), fmt.Sprintf("%.4f", n.Incentive),
					fmt.Sprintf("%.4f", n.Dividends), formatAmount(n.Emission), fmt.Sprint(n.QueriesServed), fmt.Sprint(n.QueriesSent), fmt.Sprint(n.Heard),
					fmt.Sprint(n.KnowledgeShared), fmt.Sprint(n.KnowledgeFetched)})
			}
			if err := table(out, rows); err != nil {
				return err
			}
			return modelTable(out, s.Models)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&cfg.Subnets, "subnets", cfg.Subnets, "built-in subnets to run, netuid 1, 2, … in order: "+strings.Join(subnet.BuiltinNames(), ", "))
	f.IntVar(&cfg.Validators, "validators", cfg.Validators, "number of validators per subnet")
	f.IntVar(&cfg.Miners, "miners", cfg.Miners, "number of miners per subnet (adversaries included)")
	f.StringVar(&adversaries, "adversaries", "", "comma-separated adversaries, on every subnet: lazy (a miner answering at random), offline (a miner leaving once a third of --for or of --epochs has passed, whichever comes first; after the 4th epoch if neither is given), copier (a validator copying another's weights; on a model subnet, a miner committing the leader's CID later)")
	f.Uint64Var(&cfg.Tempo, "tempo", cfg.Tempo, "blocks per epoch")
	f.DurationVar(&cfg.BlockTime, "block-time", cfg.BlockTime, "time between blocks")
	f.DurationVar(&cfg.For, "for", 0, "run this long, print the summary and exit (default: until Ctrl-C)")
	f.IntVar(&cfg.Epochs, "epochs", 0, "stop after this many epochs, print the summary and exit")
	f.BoolVar(&cfg.CommitReveal, "commit-reveal", false, "validators commit weights and reveal them a tempo later (a copier then trails the validators it copies)")
	f.BoolVar(&asJSON, "json", false, "print the final summary as JSON on stdout (progress goes to stderr)")
	f.StringVar(&cfg.Dashboard, "dashboard", "127.0.0.1:0", `serve the web dashboard (metagraph, incentive and dividends over epochs, gossip and knowledge, Prometheus /metrics) on this address; "" for none`)
	f.StringVar(&cfg.Gateway, "gateway", "", `serve every subnet whose miners serve text.chat (qa) through an OpenAI-compatible API on this address (e.g. 127.0.0.1:8000), each as its first validator; prints "gateway: http://ADDR/v1 key ct-…" and the models`)
	f.Float64Var(&cfg.OrganicFraction, "organic-fraction", cfg.OrganicFraction, "fraction of --gateway's requests whose answers the validator serving it scores into its miners' scores, with the mechanism of a --spec subnet for their synapse (one whose reward reads no expected answer, e.g. examples/chat/spec.yaml)")
	f.StringVar(&cfg.GatewayDir, "gateway-dir", "", "keep the gateway's API key file (keys.json) and usage ledger (usage.db) in this directory (default: a temporary directory removed at exit)")
	f.StringVar(&cfg.Upstream.BaseURL, "upstream", "", "OpenAI-compatible model server (e.g. http://127.0.0.1:8080) the qa miners answer text.chat and text.embed from (default: the retrieval model)")
	f.StringVar(&cfg.Upstream.Model, "upstream-model", "", "model to ask --upstream for")
	f.StringArrayVar(&cfg.Specs, "spec", nil, "run a subnet from this spec file (repeatable), netuids after the --subnets built-ins (with --spec, built-ins run only if --subnets is given); custom synapses need --upstream")
	f.StringVar(&cfg.JudgeURL, "judge-url", "", "OpenAI-compatible base URL, with its version (e.g. http://127.0.0.1:8080/v1), that the --spec subnets' LLM judges ask instead of their spec's url (default: --upstream's /v1, if given)")
	addCheck(cmd, func() error {
		if cfg.Gateway != "" {
			if err := checkHostPort("gateway", cfg.Gateway); err != nil {
				return err
			}
		}
		if !(cfg.OrganicFraction >= 0 && cfg.OrganicFraction <= 1) {
			return fmt.Errorf("--organic-fraction %v: want 0 to 1", cfg.OrganicFraction)
		}
		if u := cfg.Upstream.BaseURL; u != "" && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return fmt.Errorf("--upstream %q: want an http:// or https:// URL", u)
		}
		if u := cfg.JudgeURL; u != "" && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return fmt.Errorf("--judge-url %q: want an http:// or https:// URL", u)
		}
		return nil
	})
	return cmd
}

// modelTable prints the model subnets' ranking: each miner by incentive,
// with what it trained on, its loss as the subnet's first honest validator
// last measured it and that validator's last note.
func modelTable(out io.Writer, models []localnet.ModelSummary) error {
	var rows [][]string
	flush := func() error {
		err := table(out, rows)
		rows = nil
		return err
	}
	for i, s := range models {
		if i == 0 || models[i-1].Netuid != s.Netuid {
			if err := flush(); err != nil {
				return err
			}
			fmt.Fprintf(out, "\nmodels of subnet %d by incentive (loss in bits per byte, as its first honest validator last measured):\n", s.Netuid)
			rows = append(rows, []string{"UID", "MINER", "TRAINED", "CID", "BLOCK", "LOSS", "INCENTIVE", "STATUS"})
		}
		who, trained, loss, cid, block := "honest", "-", "-", "-", "-"
		if s.Adversary != "" {
			who = s.Adversary
		}
		if s.TrainedBytes > 0 {
			trained = fmt.Sprint(s.TrainedBytes)
		}
		if s.Loss != nil {
			loss = fmt.Sprintf("%.4f", *s.Loss)
		}
		if s.CID != "" {
			cid, block = shortCID(s.CID), fmt.Sprint(s.CommitBlock)
		}
		rows = append(rows, []string{fmt.Sprint(s.UID), who, trained, cid, block, loss, fmt.Sprintf("%.4f", s.Incentive), s.StatusText()})
	}
	return flush()
}

// shortCID abbreviates a CID for a table: its first 12 and last 6
// characters.
func shortCID(c string) string {
	if len(c) <= 24 {
		return c
	}
	return c[:12] + "…" + c[len(c)-6:]
}

// usageErrorIf marks configuration errors as usage errors.
func usageErrorIf(err error) error {
	if strings.HasPrefix(err.Error(), "localnet: want") || strings.Contains(err.Error(), "unknown subnet") || strings.Contains(err.Error(), "listed twice") || strings.Contains(err.Error(), "unknown adversary") ||
		strings.Contains(err.Error(), "adversaries need") || strings.Contains(err.Error(), "tempo must") ||
		strings.Contains(err.Error(), "for the gateway") || strings.HasPrefix(err.Error(), "localnet: spec ") {
		return usageError(err)
	}
	return err
}

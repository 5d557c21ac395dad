package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync"

	"github.com/spf13/cobra"

	"github.com/cybertensor/cybertensor/knowledge"
	"github.com/cybertensor/cybertensor/model/charlm"
)

func (a *app) modelCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "model",
		Short: "Train, evaluate and inspect models of the built-in model family (byte-level n-gram, pure Go)",
		Long: `The built-in model family of model subnets (#25): a byte-level n-gram language
model with interpolated Witten–Bell smoothing, trained and evaluated in pure Go
with nothing to download (package model/charlm; docs/models.md).

A miner trains a model on text (a file or a knowledge object), publishes the
artifact with "knowledge publish" and commits its CID with "commitments set";
a validator evaluates it with "model eval" on held-out text. Loss is the mean
cross-entropy in bits per character (a character is a byte); lower is better.

--data takes a FILE or a knowledge CID. A CID is read from the local library
(<home>/knowledge), or with --peer fetched from the swarm first, as
"knowledge get" does; --peer starts a transient neuron with the hotkey.`,
	}
	cmd.AddCommand(a.modelTrain(), a.modelEval(), a.modelInspect())
	return cmd
}

// modelJSON is a model as train and inspect print it.
type modelJSON struct {
	charlm.Card
	FormatVersion int    `json:"format_version"`
	Entries       int    `json:"entries"`
	WeightsHash   string `json:"weights_hash"`
	ArtifactBytes int    `json:"artifact_bytes"`
	File          string `json:"file"`
}

func toModelJSON(m *charlm.Model, size int, file string) modelJSON {
	h := m.WeightsHash()
	return modelJSON{Card: m.Card(), FormatVersion: charlm.FormatVersion, Entries: m.Entries(),
		WeightsHash: hex.EncodeToString(h[:]), ArtifactBytes: size, File: file}
}

func printModel(w io.Writer, j modelJSON) error {
	rows := [][]string{
		{"file", j.File},
		{"name", j.Name},
		{"order", fmt.Sprint(j.Order)},
		{"training bytes", fmt.Sprint(j.TrainingBytes)},
		{"data CID", j.DataCID},
		{"trainer", j.TrainerVersion},
		{"prune threshold", fmt.Sprint(j.PruneThreshold)},
		{"entries", fmt.Sprint(j.Entries)},
		{"weights hash", j.WeightsHash},
		{"artifact", fmt.Sprintf("%d bytes, format %d", j.ArtifactBytes, j.FormatVersion)},
	}
	return table(w, rows)
}

// modelError gives errors caused by the user's input exit status 2.
func modelError(err error) error {
	for _, e := range []error{charlm.ErrBadArtifact, charlm.ErrTooLarge, charlm.ErrBadConfig, charlm.ErrNoData} {
		if errors.Is(err, e) {
			return usageError(err)
		}
	}
	return knowledgeError(err)
}

// modelText is --data opened for reading.
type modelText struct {
	io.Reader
	// cid is the data's knowledge CID: the one given, or for a file the
	// CID "knowledge publish" gives its body.
	cid   string
	close func()
}

// openModelText opens data, a FILE or a knowledge CID (see "model" --help).
// For a file no larger than a knowledge object, withCID also computes the
// CID of its body.
func (a *app) openModelText(ctx context.Context, data string, f *swarmFlags, progressTo io.Writer, withCID bool) (*modelText, error) {
	if fi, err := os.Stat(data); err == nil {
		if !fi.Mode().IsRegular() {
			return nil, usageError(fmt.Errorf("--data %s is not a regular file", data))
		}
		file, err := os.Open(data)
		if err != nil {
			return nil, usageError(err)
		}
		t := &modelText{Reader: file, close: func() { file.Close() }}
		if withCID && fi.Size() <= defaultMaxObjectSize {
			c, _, err := knowledge.BodyCID(ctx, file, fi.Size())
			if _, serr := file.Seek(0, io.SeekStart); err != nil || serr != nil {
				file.Close()
				return nil, fmt.Errorf("reading %s: %w", data, errors.Join(err, serr))
			}
			t.cid = c.String()
		}
		return t, nil
	}
	c, err := knowledge.ParseCID(data)
	if err != nil {
		return nil, usageError(fmt.Errorf("--data %q is neither a file nor a knowledge CID (%v)", data, err))
	}
	lib, stop, err := a.libraryHolding(ctx, c, f, progressTo)
	if err != nil {
		return nil, err
	}
	// The body streams through a pipe; closing the text stops the copy.
	pr, pw := io.Pipe()
	var wg sync.WaitGroup
	wg.Go(func() {
		_, err := lib.Get(ctx, c, pw)
		pw.CloseWithError(knowledgeError(err))
	})
	return &modelText{Reader: pr, cid: c.String(), close: func() {
		pr.CloseWithError(errors.New("model text closed"))
		wg.Wait()
		stop()
	}}, nil
}

func (a *app) modelTrain() *cobra.Command {
	var f swarmFlags
	var data, out, name string
	var asJSON bool
	cfg := charlm.DefaultTrainConfig()
	cmd := &cobra.Command{
		Use:   "train --data FILE|CID --out FILE",
		Short: "Train a model of the built-in family on text and write its artifact",
		Long: fmt.Sprintf(`Train a byte-level n-gram model (interpolated Witten–Bell) on the text of --data
(a FILE, or a knowledge CID: see "model --help") and write its artifact to
--out, atomically (a temporary file renamed into place; mode 0600).

The same text and flags give a byte-identical artifact on every machine. The
artifact's card records the name, order, bytes trained on (the first ones of
the text, with --max-bytes), the text's CID (the CID given, or for a FILE the
CID its body gets from "knowledge publish"), the trainer version and the
pruning threshold; its weights hash covers the weights only. More text, and a
higher order up to a point, give lower loss.

--order N      n-gram order, 1..%d (default %d)
--max-bytes N  read at most N bytes of the text (0: all, up to %d)
--max-entries  bound on the count tables, %d..%d (memory ~40 bytes each);
               past it rare n-grams are pruned (the card's prune threshold)`,
			charlm.MaxOrder, cfg.Order, int64(charlm.MaxTrainBytes), 1024, charlm.DefaultLimits().MaxEntries),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			text, err := a.openModelText(cmd.Context(), data, &f, cmd.ErrOrStderr(), true)
			if err != nil {
				return err
			}
			defer text.close()
			cfg.Name, cfg.DataCID = name, text.cid
			m, err := charlm.Train(cmd.Context(), text, cfg)
			if err != nil {
				if errors.Is(err, charlm.ErrNoData) {
					return usageError(fmt.Errorf("--data %s: no text to train on", data))
				}
				return modelError(fmt.Errorf("training on %s: %w", data, err))
			}
			b := m.Encode()
			if err := writePrivateFile(out, b); err != nil {
				return fmt.Errorf("writing the model: %w", err)
			}
			j := toModelJSON(m, len(b), out)
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), j)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "trained %s (order %d) on %d bytes: %d entries, weights hash %s; wrote %s (%d bytes)\n",
				j.Name, j.Order, j.TrainingBytes, j.Entries, j.WeightsHash, out, len(b))
			return nil
		},
	}
	addSwarmFlags(cmd, &f)
	cmd.Flags().StringVar(&data, "data", "", "training text: a FILE or a knowledge CID (required)")
	cmd.Flags().StringVar(&out, "out", "", "file to write the model artifact to (required)")
	cmd.Flags().IntVar(&cfg.Order, "order", cfg.Order, fmt.Sprintf("n-gram order, 1..%d", charlm.MaxOrder))
	cmd.Flags().Int64Var(&cfg.MaxBytes, "max-bytes", 0, "train on at most this many bytes of the text (0: all)")
	cmd.Flags().IntVar(&cfg.MaxEntries, "max-entries", cfg.MaxEntries, "most n-gram counts kept while training; rare ones are pruned past it")
	cmd.Flags().StringVar(&name, "name", "", "model name in the card (default charlm-o<order>)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.MarkFlagRequired("data")
	cmd.MarkFlagRequired("out")
	addCheck(cmd, func() error {
		switch {
		case cfg.Order < 1 || cfg.Order > charlm.MaxOrder:
			return fmt.Errorf("--order %d: want 1..%d", cfg.Order, charlm.MaxOrder)
		case cfg.MaxBytes < 0:
			return fmt.Errorf("--max-bytes %d is negative", cfg.MaxBytes)
		case cfg.MaxEntries < 1024 || cfg.MaxEntries > charlm.DefaultLimits().MaxEntries:
			return fmt.Errorf("--max-entries %d: want 1024..%d", cfg.MaxEntries, charlm.DefaultLimits().MaxEntries)
		case len(name) > charlm.MaxCardString:
			return fmt.Errorf("--name is %d bytes, over %d", len(name), charlm.MaxCardString)
		}
		return nil
	})
	return cmd
}

// readModel reads and strictly decodes an artifact file.
func readModel(path string) (*charlm.Model, int, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, 0, usageError(err)
	}
	defer file.Close()
	lim := charlm.DefaultLimits()
	if fi, err := file.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > lim.MaxSize {
		return nil, 0, usageError(fmt.Errorf("%s is %d bytes, over the %d MiB limit of a model artifact", path, fi.Size(), lim.MaxSize>>20))
	}
	b, err := io.ReadAll(io.LimitReader(file, lim.MaxSize+1))
	if err != nil {
		return nil, 0, fmt.Errorf("reading %s: %w", path, err)
	}
	m, err := charlm.Decode(b, lim)
	if err != nil {
		return nil, 0, modelError(fmt.Errorf("%s: %w", path, err))
	}
	return m, len(b), nil
}

// evalJSON is what "model eval --json" prints.
type evalJSON struct {
	BitsPerChar float64 `json:"bits_per_char"`
	NatsPerChar float64 `json:"nats_per_char"`
	Perplexity  float64 `json:"perplexity"`
	Chars       int     `json:"chars"`
	Model       string  `json:"model"`
	Order       int     `json:"order"`
	WeightsHash string  `json:"weights_hash"`
	DataCID     string  `json:"data_cid,omitempty"`
}

// defaultEvalBytes is the most text "model eval" reads by default.
const defaultEvalBytes = 64 << 20

func (a *app) modelEval() *cobra.Command {
	var f swarmFlags
	var modelFile, data string
	var maxBytes int64
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "eval --model FILE --data FILE|CID",
		Short: "Evaluate a model on text: its loss in bits per character",
		Long: fmt.Sprintf(`Evaluate the model artifact --model on the text of --data (a FILE, or a knowledge
CID: see "model --help") and print its loss: the mean cross-entropy in bits per
character (a character is a byte), also in nats, the perplexity (2^bits), the
characters evaluated and the model's weights hash. Lower is better; guessing
uniformly scores 8 bits per character.

The artifact is decoded strictly (at most %d MiB and %d entries): a file that
is not one, or is over the limits, is refused with exit status 2. The text is
read whole into memory, at most --max-bytes of it (default %d MiB); longer text
is refused. The sum runs in text order, so the same artifact and text give the
same loss on the same platform.`, charlm.DefaultLimits().MaxSize>>20, charlm.DefaultLimits().MaxEntries, defaultEvalBytes>>20),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, _, err := readModel(modelFile)
			if err != nil {
				return err
			}
			text, err := a.openModelText(cmd.Context(), data, &f, cmd.ErrOrStderr(), false)
			if err != nil {
				return err
			}
			b, err := io.ReadAll(io.LimitReader(text, maxBytes+1))
			text.close()
			if err != nil {
				return modelError(fmt.Errorf("reading %s: %w", data, err))
			}
			if int64(len(b)) > maxBytes {
				return usageError(fmt.Errorf("--data %s is over --max-bytes %d", data, maxBytes))
			}
			bits, err := m.Loss(cmd.Context(), b)
			if err != nil {
				if errors.Is(err, charlm.ErrNoData) {
					return usageError(fmt.Errorf("--data %s: no text to evaluate on", data))
				}
				return err
			}
			h := m.WeightsHash()
			j := evalJSON{BitsPerChar: bits, NatsPerChar: bits * math.Ln2, Perplexity: math.Exp2(bits), Chars: len(b),
				Model: m.Card().Name, Order: m.Order(), WeightsHash: hex.EncodeToString(h[:]), DataCID: text.cid}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), j)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "loss %.4f bits/char (%.4f nats/char, perplexity %.3f) over %d chars\nmodel %s (order %d), weights hash %s\n",
				j.BitsPerChar, j.NatsPerChar, j.Perplexity, j.Chars, j.Model, j.Order, j.WeightsHash)
			return nil
		},
	}
	addSwarmFlags(cmd, &f)
	cmd.Flags().StringVar(&modelFile, "model", "", "model artifact file (required)")
	cmd.Flags().StringVar(&data, "data", "", "evaluation text: a FILE or a knowledge CID (required)")
	cmd.Flags().Int64Var(&maxBytes, "max-bytes", defaultEvalBytes, "refuse text longer than this many bytes")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.MarkFlagRequired("model")
	cmd.MarkFlagRequired("data")
	addCheck(cmd, func() error {
		if maxBytes < 1 {
			return fmt.Errorf("--max-bytes %d: want at least 1", maxBytes)
		}
		return nil
	})
	return cmd
}

func (a *app) modelInspect() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect FILE",
		Short: "Print a model artifact's card, size and weights hash",
		Long: `Print a model artifact's card (name, order, bytes trained on, data CID, trainer
version, prune threshold), its number of n-gram entries, its weights hash (the
same for the same weights under any card) and its size. The artifact is decoded
strictly, as "model eval" does.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, size, err := readModel(args[0])
			if err != nil {
				return err
			}
			j := toModelJSON(m, size, args[0])
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), j)
			}
			return printModel(cmd.OutOrStdout(), j)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

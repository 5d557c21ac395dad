package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/chainlink/comet"
	"github.com/cybertensor/cybertensor/wallet"
)

// envChain names the default chain RPC URL.
const envChain = "CYBERTENSOR_CHAIN"

// defaultChainURL is where "chain run" serves RPC by default.
const defaultChainURL = "http://127.0.0.1:26657"

// baseUnitsPerToken: amounts on the command line are in tokens with up to
// nine decimals; the chain counts base units.
const baseUnitsPerToken = chain.BaseUnitsPerToken

// parseAmount reads a token amount such as "1.5" into base units.
func parseAmount(s string) (uint64, error) {
	r, ok := new(big.Rat).SetString(s)
	if !ok || r.Sign() < 0 || strings.ContainsAny(s, "eE/") {
		return 0, fmt.Errorf("amount %q: want a non-negative decimal number of tokens, e.g. 1.5", s)
	}
	r.Mul(r, new(big.Rat).SetInt64(baseUnitsPerToken))
	if !r.IsInt() {
		return 0, fmt.Errorf("amount %q: at most 9 decimal places", s)
	}
	if !r.Num().IsUint64() || r.Num().Uint64() > 1<<62 {
		return 0, fmt.Errorf("amount %q is too large", s)
	}
	return r.Num().Uint64(), nil
}

// formatAmount prints base units as tokens.
func formatAmount(v uint64) string { return chain.FormatTokens(v) }

// chainFlags are shared by commands that talk to a running chain.
type chainFlags struct {
	url     string
	timeout time.Duration
	json    bool
	// raw prints token amounts in base units, not tokens.
	raw bool
}

// addChainFlags adds the flags of a command that asks the chain and
// prints the answer: --chain, --timeout, --json and --raw.
func addChainFlags(cmd *cobra.Command, f *chainFlags, getenv func(string) string) {
	addChainConnFlags(cmd, f, getenv)
	cmd.Flags().BoolVar(&f.json, "json", false, "print JSON (token amounts in base units, 1 token = "+strconv.Itoa(baseUnitsPerToken)+")")
	cmd.Flags().BoolVar(&f.raw, "raw", false, "print token amounts in base units instead of tokens")
}

// addChainConnFlags adds --chain and --timeout only: for commands that
// run rather than print (miner run, validator run).
func addChainConnFlags(cmd *cobra.Command, f *chainFlags, getenv func(string) string) {
	def := defaultChainURL
	if v := getenv(envChain); v != "" {
		def = v
	}
	cmd.Flags().StringVar(&f.url, "chain", def, "chain RPC URL (env "+envChain+")")
	cmd.Flags().DurationVar(&f.timeout, "timeout", time.Minute, "how long to wait for the chain")
	addCheck(cmd, f.check)
}

func (f *chainFlags) check() error {
	if f.timeout <= 0 {
		return fmt.Errorf("--timeout %v: must be positive", f.timeout)
	}
	return checkChainURL(f.url)
}

// amount prints base units as tokens, or as base units with --raw.
func (f *chainFlags) amount(v uint64) string {
	if f.raw {
		return strconv.FormatUint(v, 10)
	}
	return formatAmount(v)
}

// attr prints an event attribute, in tokens if it is an amount.
func (f *chainFlags) attr(name, value string) string {
	if !chain.IsTokenAmount(name) {
		return value
	}
	v, err := strconv.ParseUint(value, 10, 64)
	if err != nil {
		return value
	}
	return f.amount(v)
}

func (a *app) dialChain(ctx context.Context, f *chainFlags) (*comet.Client, error) {
	cfg := comet.DefaultConfig()
	cfg.URL = f.url
	cfg.Logger = a.log
	return comet.Dial(ctx, cfg)
}

// withChain runs fn with a connected client and a deadline.
func (a *app) withChain(cmd *cobra.Command, f *chainFlags, fn func(ctx context.Context, c *comet.Client) error) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
	defer cancel()
	c, err := a.dialChain(ctx, f)
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(ctx, c)
}

// keyFlags select a wallet key to sign with.
type keyFlags struct {
	wallet       string
	hotkey       string
	passwordFile string
}

func addColdkeyFlags(cmd *cobra.Command, k *keyFlags) {
	cmd.Flags().StringVar(&k.wallet, "wallet", "default", "wallet whose coldkey signs")
	cmd.Flags().StringVar(&k.passwordFile, "password-file", "", "read the coldkey password from this file")
}

func addHotkeyFlags(cmd *cobra.Command, k *keyFlags) {
	cmd.Flags().StringVar(&k.wallet, "wallet", "default", "wallet of the hotkey")
	cmd.Flags().StringVar(&k.hotkey, "hotkey", wallet.DefaultHotkey, "hotkey name")
	cmd.Flags().StringVar(&k.passwordFile, "password-file", "", "password file, if the key is encrypted")
}

// coldkeyAddress is a wallet's coldkey address, read from its public
// side: no password.
func (a *app) coldkeyAddress(name string) (wallet.Address, error) {
	s, err := a.store()
	if err != nil {
		return wallet.Address{}, err
	}
	info, err := s.Info(name)
	if err != nil {
		return wallet.Address{}, walletError(err)
	}
	addr, _, err := wallet.ParseAddress(info.Coldkey.Address)
	return addr, err
}

func (a *app) coldkey(k *keyFlags) (*wallet.PrivateKey, error) {
	s, err := a.store()
	if err != nil {
		return nil, err
	}
	pw, err := passwordSource{env: a.env, file: k.passwordFile}.read("Coldkey password", false)
	if err != nil {
		return nil, err
	}
	key, err := s.Coldkey(k.wallet, pw)
	// argon2id's 64 MiB of work memory is garbage now; a neuron that
	// then idles would keep it resident until its heap doubled, so it is
	// given back at once (16 idle miner processes held 1.4 GiB of heap
	// with their coldkey opened, 200 MiB with --hotkey-only).
	debug.FreeOSMemory()
	if err != nil {
		return nil, walletError(err)
	}
	return key, nil
}

func (a *app) hotkey(k *keyFlags) (*wallet.PrivateKey, error) {
	s, err := a.store()
	if err != nil {
		return nil, err
	}
	key, err := s.Hotkey(k.wallet, k.hotkey, func() ([]byte, error) {
		return passwordSource{env: a.env, file: k.passwordFile}.read("Hotkey password", false)
	})
	if err != nil {
		return nil, walletError(err)
	}
	return key, nil
}

// hotkeyAddress resolves a hotkey given as an address or as a hotkey name
// of the wallet.
func (a *app) hotkeyAddress(walletName, hotkey string) (wallet.Address, error) {
	if addr, _, err := wallet.ParseAddress(hotkey); err == nil {
		return addr, nil
	}
	s, err := a.store()
	if err != nil {
		return wallet.Address{}, err
	}
	f, err := s.HotkeyFile(walletName, hotkey)
	if err != nil {
		return wallet.Address{}, walletError(err)
	}
	pub, err := f.Public()
	if err != nil {
		return wallet.Address{}, err
	}
	return pub.Address(), nil
}

// sendWith connects to the chain, sends msg signed by key and prints the
// outcome: the body of every transaction command.
func (a *app) sendWith(cmd *cobra.Command, f *chainFlags, key *wallet.PrivateKey, msg *chainpb.Msg) error {
	return a.withChain(cmd, f, func(ctx context.Context, c *comet.Client) error {
		_, err := a.send(ctx, cmd.OutOrStdout(), c, key, msg, f)
		return err
	})
}

// txOutcome is what every transaction command prints.
type txOutcome struct {
	TxHash string        `json:"tx_hash"`
	Height uint64        `json:"height"`
	Signer string        `json:"signer"`
	Events []chain.Event `json:"events,omitempty"`
}

// send signs msg with key, submits it, waits for inclusion and prints the
// outcome. A rejected transaction is an error naming the chain's rule.
func (a *app) send(ctx context.Context, out io.Writer, c chainlink.Chain, key *wallet.PrivateKey, msg *chainpb.Msg, f *chainFlags) (*chainlink.Receipt, error) {
	rec, err := chainlink.NewSender(c, key).Send(ctx, msg)
	if err != nil {
		var te *chainlink.TxError
		if errors.As(err, &te) {
			return nil, &exitError{code: exitFailure, err: err}
		}
		return nil, err
	}
	o := txOutcome{TxHash: strings.ToUpper(hex.EncodeToString(rec.TxHash[:])), Height: rec.Height, Signer: key.PublicKey().Address().String(), Events: rec.Events}
	if f.json {
		return rec, writeJSON(out, o)
	}
	fmt.Fprintf(out, "included in block %d (tx %s)\n", o.Height, o.TxHash)
	for _, e := range rec.Events {
		if e.Type == "signer" {
			continue
		}
		var kv []string
		for _, k := range sortedKeys(e.Attrs) {
			kv = append(kv, k+"="+f.attr(k, e.Attrs[k]))
		}
		fmt.Fprintf(out, "  %s %s\n", e.Type, strings.Join(kv, " "))
	}
	return rec, nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cybertensor/cybertensor/wallet"
)

// walletFlags are the flags shared by the wallet subcommands.
type walletFlags struct {
	name         string
	hotkey       string
	passwordFile string
	json         bool
}

func (a *app) store() (*wallet.Store, error) {
	if a.homeErr != nil {
		return nil, a.homeErr
	}
	return wallet.NewStore(wallet.DefaultConfig(a.home))
}

// walletError gives wallet errors caused by bad input exit status 2.
func walletError(err error) error {
	for _, e := range []error{wallet.ErrInvalidMnemonic, wallet.ErrInvalidName, wallet.ErrInvalidKey, wallet.ErrInvalidAddress, wallet.ErrInvalidSignature} {
		if errors.Is(err, e) {
			return usageError(err)
		}
	}
	return err
}

func (a *app) walletCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "wallet",
		Short: "Create and use wallets: a coldkey for funds and hotkeys for neurons",
		Long: `A wallet has one coldkey, which holds funds and stake and is always encrypted,
and any number of named hotkeys, which operate neurons. A hotkey's key is also
its neuron's libp2p identity. Wallets live in <home>/wallets/<name>.

Passwords come from --password-file, the ` + envPassword + ` environment
variable, or a prompt on the terminal.`,
	}
	cmd.AddCommand(a.walletNew(), a.walletNewHotkey(), a.walletRegenColdkey(), a.walletRegenHotkey(),
		a.walletList(), a.walletShow(), a.walletSign(), a.walletVerify(), a.walletBalance(), a.walletTransfer(),
		a.walletSetIdentity(), a.walletGetIdentity())
	cmd.AddCommand(a.walletSwapHotkey(), a.walletOverview(), a.walletInspect())
	return cmd
}

func addNameFlag(cmd *cobra.Command, f *walletFlags) {
	addWalletFlag(cmd, &f.name, "wallet name")
}

// addWalletFlag adds --wallet, as every command that opens a wallet
// names it, with --name, the wallet commands' first spelling, as an alias.
func addWalletFlag(cmd *cobra.Command, v *string, usage string) {
	cmd.Flags().StringVar(v, "wallet", "default", usage+" (alias --name)")
	cmd.Flags().SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if name == "name" {
			name = "wallet"
		}
		return pflag.NormalizedName(name)
	})
}

func addPasswordFlag(cmd *cobra.Command, f *walletFlags) {
	cmd.Flags().StringVar(&f.passwordFile, "password-file", "", "read the password from the first line of this file")
}

func addJSONFlag(cmd *cobra.Command, f *walletFlags) {
	cmd.Flags().BoolVar(&f.json, "json", false, "print JSON")
}

func (a *app) walletNew() *cobra.Command {
	var f walletFlags
	var words int
	var force, encryptHotkey bool
	cmd := &cobra.Command{
		Use:   "new",
		Short: "Create a wallet: an encrypted coldkey and a first hotkey",
		Long: `Create a wallet with a new coldkey, encrypted with a password, and a first
hotkey. The mnemonics of both keys are printed once: write them down, they are
the only way to restore the keys.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkWords(words); err != nil {
				return err
			}
			s, err := a.store()
			if err != nil {
				return err
			}
			if there, err := s.Exists(f.name); err != nil {
				return walletError(err)
			} else if there && !force {
				return walletError(fmt.Errorf("wallet %q: %w", f.name, wallet.ErrExists))
			}
			pw, err := passwordSource{env: a.env, file: f.passwordFile}.read("Password for the new coldkey", true)
			if err != nil {
				return err
			}
			var hotPW []byte
			if encryptHotkey {
				hotPW = pw
			}
			c, err := s.Create(f.name, wallet.CreateOptions{Words: words, Password: pw, Hotkey: f.hotkey, HotkeyPassword: hotPW, Force: force})
			if err != nil {
				return walletError(err)
			}
			a.log.Debug("wallet created", "wallet", f.name, "coldkey", c.Info.Coldkey.Address)
			if f.json {
				return writeJSON(cmd.OutOrStdout(), map[string]any{
					"wallet": c.Info, "coldkey_mnemonic": c.ColdkeyMnemonic, "hotkey_mnemonic": c.HotkeyMnemonic,
				})
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Created wallet %q.\n\n", f.name)
			if err := printInfo(cmd, c.Info); err != nil {
				return err
			}
			fmt.Fprintf(out, "\nWrite these mnemonics down and keep them offline. They are shown only now\nand are the only way to restore the keys.\n\n")
			fmt.Fprintf(out, "coldkey mnemonic:      %s\n", c.ColdkeyMnemonic)
			fmt.Fprintf(out, "hotkey %q mnemonic: %s\n", c.Info.Hotkeys[0].Name, c.HotkeyMnemonic)
			return nil
		},
	}
	addNameFlag(cmd, &f)
	addPasswordFlag(cmd, &f)
	addJSONFlag(cmd, &f)
	cmd.Flags().StringVar(&f.hotkey, "hotkey", wallet.DefaultHotkey, "name of the first hotkey")
	cmd.Flags().IntVar(&words, "words", 12, "mnemonic length: 12 or 24")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite the coldkey and hotkey of an existing wallet")
	cmd.Flags().BoolVar(&encryptHotkey, "encrypt-hotkey", false, "encrypt the hotkey too, with the same password")
	return cmd
}

func (a *app) walletNewHotkey() *cobra.Command {
	var f walletFlags
	var words int
	var force, encrypt bool
	cmd := &cobra.Command{
		Use:   "new-hotkey",
		Short: "Add a hotkey with a new mnemonic to a wallet",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkWords(words); err != nil {
				return err
			}
			s, err := a.store()
			if err != nil {
				return err
			}
			var pw []byte
			if encrypt {
				if pw, err = (passwordSource{env: a.env, file: f.passwordFile}).read("Password for the new hotkey", true); err != nil {
					return err
				}
			}
			mnemonic, ki, err := s.NewHotkey(f.name, f.hotkey, words, pw, force)
			if err != nil {
				return walletError(err)
			}
			if f.json {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"hotkey": ki, "mnemonic": mnemonic})
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Created hotkey %q in wallet %q.\n\n", ki.Name, f.name)
			if err := printKeys(cmd, []wallet.KeyInfo{ki}, "hotkey"); err != nil {
				return err
			}
			fmt.Fprintf(out, "\nmnemonic (shown once): %s\n", mnemonic)
			return nil
		},
	}
	addNameFlag(cmd, &f)
	addPasswordFlag(cmd, &f)
	addJSONFlag(cmd, &f)
	cmd.Flags().StringVar(&f.hotkey, "hotkey", "", "name of the new hotkey")
	cmd.MarkFlagRequired("hotkey")
	cmd.Flags().IntVar(&words, "words", 12, "mnemonic length: 12 or 24")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing hotkey of that name")
	cmd.Flags().BoolVar(&encrypt, "encrypt", false, "encrypt the hotkey with a password (unattended miners keep hotkeys plain)")
	return cmd
}

// checkWords checks --words before any password is asked for.
func checkWords(words int) error {
	if words != 12 && words != 24 {
		return usageError(fmt.Errorf("--words %d: a new mnemonic has 12 or 24 words", words))
	}
	return nil
}

// readMnemonic takes the mnemonic from --mnemonic or --mnemonic-file.
func readMnemonic(words, file string) (string, error) {
	switch {
	case words != "" && file != "":
		return "", usageError(errors.New("give --mnemonic or --mnemonic-file, not both"))
	case words != "":
		return words, nil
	case file != "":
		st, err := os.Stat(file)
		if err != nil {
			return "", usageError(fmt.Errorf("--mnemonic-file: %w", err))
		}
		if st.Size() > 4096 {
			return "", usageError(fmt.Errorf("--mnemonic-file %s: %d bytes is too large for a mnemonic", file, st.Size()))
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return "", usageError(fmt.Errorf("--mnemonic-file: %w", err))
		}
		return string(b), nil
	default:
		return "", usageError(errors.New("give the words with --mnemonic or --mnemonic-file"))
	}
}

func (a *app) walletRegenColdkey() *cobra.Command {
	var f walletFlags
	var mnemonic, mnemonicFile string
	var force bool
	cmd := &cobra.Command{
		Use:   "regen-coldkey",
		Short: "Restore a wallet's coldkey from its mnemonic",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			words, err := readMnemonic(mnemonic, mnemonicFile)
			if err != nil {
				return err
			}
			if _, err := wallet.ValidateMnemonic(wallet.NormalizeMnemonic(words)); err != nil {
				return usageError(err) // before asking for a password
			}
			s, err := a.store()
			if err != nil {
				return err
			}
			pw, err := passwordSource{env: a.env, file: f.passwordFile}.read("Password for the coldkey", true)
			if err != nil {
				return err
			}
			ki, err := s.ImportColdkey(f.name, words, pw, force)
			if err != nil {
				return walletError(err)
			}
			if f.json {
				return writeJSON(cmd.OutOrStdout(), ki)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Restored the coldkey of wallet %q.\n\n", f.name)
			return printKeys(cmd, []wallet.KeyInfo{ki}, "coldkey")
		},
	}
	addNameFlag(cmd, &f)
	addPasswordFlag(cmd, &f)
	addJSONFlag(cmd, &f)
	cmd.Flags().StringVar(&mnemonic, "mnemonic", "", "the mnemonic words (prefer --mnemonic-file: arguments are visible to other users)")
	cmd.Flags().StringVar(&mnemonicFile, "mnemonic-file", "", "read the mnemonic from this file")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing coldkey")
	return cmd
}

func (a *app) walletRegenHotkey() *cobra.Command {
	var f walletFlags
	var mnemonic, mnemonicFile string
	var force, encrypt bool
	cmd := &cobra.Command{
		Use:   "regen-hotkey",
		Short: "Restore a hotkey from its mnemonic",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			words, err := readMnemonic(mnemonic, mnemonicFile)
			if err != nil {
				return err
			}
			if _, err := wallet.ValidateMnemonic(wallet.NormalizeMnemonic(words)); err != nil {
				return usageError(err)
			}
			s, err := a.store()
			if err != nil {
				return err
			}
			var pw []byte
			if encrypt {
				if pw, err = (passwordSource{env: a.env, file: f.passwordFile}).read("Password for the hotkey", true); err != nil {
					return err
				}
			}
			ki, err := s.ImportHotkey(f.name, f.hotkey, words, pw, force)
			if err != nil {
				return walletError(err)
			}
			if f.json {
				return writeJSON(cmd.OutOrStdout(), ki)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Restored hotkey %q of wallet %q.\n\n", ki.Name, f.name)
			return printKeys(cmd, []wallet.KeyInfo{ki}, "hotkey")
		},
	}
	addNameFlag(cmd, &f)
	addPasswordFlag(cmd, &f)
	addJSONFlag(cmd, &f)
	cmd.Flags().StringVar(&f.hotkey, "hotkey", wallet.DefaultHotkey, "hotkey name")
	cmd.Flags().StringVar(&mnemonic, "mnemonic", "", "the mnemonic words (prefer --mnemonic-file: arguments are visible to other users)")
	cmd.Flags().StringVar(&mnemonicFile, "mnemonic-file", "", "read the mnemonic from this file")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing hotkey")
	cmd.Flags().BoolVar(&encrypt, "encrypt", false, "encrypt the hotkey with a password")
	return cmd
}

func (a *app) walletList() *cobra.Command {
	var f walletFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the wallets in the home directory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := a.store()
			if err != nil {
				return err
			}
			list, err := s.List()
			if err != nil {
				return err
			}
			if f.json {
				return writeJSON(cmd.OutOrStdout(), list)
			}
			if len(list) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "No wallets in %s. Create one with: cybertensor wallet new --name NAME\n", a.home)
				return nil
			}
			rows := [][]string{{"WALLET", "COLDKEY", "HOTKEYS"}}
			for _, w := range list {
				if w.Error != "" {
					rows = append(rows, []string{w.Name, "unreadable: " + w.Error, ""})
					continue
				}
				var hk []string
				for _, h := range w.Hotkeys {
					hk = append(hk, h.Name)
				}
				rows = append(rows, []string{w.Name, w.Coldkey.Address, strings.Join(hk, ", ")})
			}
			return table(cmd.OutOrStdout(), rows)
		},
	}
	addJSONFlag(cmd, &f)
	return cmd
}

func (a *app) walletShow() *cobra.Command {
	var f walletFlags
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show a wallet's addresses, public keys and hotkey peer IDs",
		Long: `Show a wallet's coldkey and hotkeys: address, public key and, for each hotkey,
the libp2p peer ID of the neuron it operates. No password is needed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := a.store()
			if err != nil {
				return err
			}
			info, err := s.Info(f.name)
			if err != nil {
				return walletError(err)
			}
			if f.hotkey != "" {
				var keep []wallet.KeyInfo
				for _, h := range info.Hotkeys {
					if h.Name == f.hotkey {
						keep = append(keep, h)
					}
				}
				if keep == nil {
					return fmt.Errorf("hotkey %q of wallet %q: %w", f.hotkey, f.name, wallet.ErrNotFound)
				}
				info.Hotkeys = keep
			}
			if f.json {
				return writeJSON(cmd.OutOrStdout(), info)
			}
			return printInfo(cmd, info)
		},
	}
	addNameFlag(cmd, &f)
	addJSONFlag(cmd, &f)
	cmd.Flags().StringVar(&f.hotkey, "hotkey", "", "show only this hotkey")
	return cmd
}

func printInfo(cmd *cobra.Command, info wallet.Info) error {
	fmt.Fprintf(cmd.OutOrStdout(), "wallet %s\n", info.Name)
	if err := printKeys(cmd, []wallet.KeyInfo{info.Coldkey}, "coldkey"); err != nil {
		return err
	}
	if len(info.Hotkeys) == 0 {
		fmt.Fprintln(cmd.OutOrStdout(), "no hotkeys")
		return nil
	}
	return printKeys(cmd, info.Hotkeys, "hotkey")
}

func printKeys(cmd *cobra.Command, keys []wallet.KeyInfo, kind string) error {
	var rows [][]string
	for _, k := range keys {
		name := kind
		if kind == "hotkey" {
			name = "hotkey " + k.Name
		}
		enc := "plain"
		if k.Encrypted {
			enc = "encrypted"
		}
		rows = append(rows, []string{name, "address", k.Address})
		rows = append(rows, []string{"", "public key", k.PublicKey})
		if k.PeerID != "" {
			rows = append(rows, []string{"", "peer ID", k.PeerID})
		}
		rows = append(rows, []string{"", "stored", enc})
	}
	return table(cmd.OutOrStdout(), rows)
}

// readMessage takes the message from --message or --message-file.
func readMessage(msg, file string, msgSet bool) ([]byte, error) {
	switch {
	case msgSet && file != "":
		return nil, usageError(errors.New("give --message or --message-file, not both"))
	case msgSet:
		return []byte(msg), nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, usageError(fmt.Errorf("--message-file: %w", err))
		}
		return b, nil
	default:
		return nil, usageError(errors.New("give the message with --message or --message-file"))
	}
}

type signature struct {
	Address   string `json:"address"`
	PublicKey string `json:"public_key"`
	Signature string `json:"signature"`
}

func (a *app) walletSign() *cobra.Command {
	var f walletFlags
	var msg, msgFile string
	var useColdkey bool
	cmd := &cobra.Command{
		Use:   "sign",
		Short: "Sign a message with a hotkey or the coldkey",
		Long: `Sign an arbitrary message. The signed bytes are prefixed with
"\x19cybertensor signed message:\n<length>\n", so a message signature can never be
used as a transaction signature. Verify with "cybertensor wallet verify".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := readMessage(msg, msgFile, cmd.Flags().Changed("message"))
			if err != nil {
				return err
			}
			s, err := a.store()
			if err != nil {
				return err
			}
			src := passwordSource{env: a.env, file: f.passwordFile}
			var key *wallet.PrivateKey
			if useColdkey {
				pw, err := src.read("Coldkey password", false)
				if err != nil {
					return err
				}
				key, err = s.Coldkey(f.name, pw)
				if err != nil {
					return walletError(err)
				}
			} else {
				key, err = s.Hotkey(f.name, f.hotkey, func() ([]byte, error) { return src.read("Hotkey password", false) })
				if err != nil {
					return walletError(err)
				}
			}
			pub := key.PublicKey()
			sig := signature{Address: pub.Address().String(), PublicKey: pub.Hex(), Signature: hex.EncodeToString(key.SignMessage(m))}
			if f.json {
				return writeJSON(cmd.OutOrStdout(), sig)
			}
			return table(cmd.OutOrStdout(), [][]string{{"address", sig.Address}, {"public key", sig.PublicKey}, {"signature", sig.Signature}})
		},
	}
	addNameFlag(cmd, &f)
	addPasswordFlag(cmd, &f)
	addJSONFlag(cmd, &f)
	cmd.Flags().StringVar(&f.hotkey, "hotkey", wallet.DefaultHotkey, "sign with this hotkey")
	cmd.Flags().BoolVar(&useColdkey, "coldkey", false, "sign with the coldkey instead of a hotkey")
	cmd.Flags().StringVar(&msg, "message", "", "the message")
	cmd.Flags().StringVar(&msgFile, "message-file", "", "read the message from this file")
	return cmd
}

func (a *app) walletVerify() *cobra.Command {
	var f walletFlags
	var msg, msgFile, pubHex, sigHex, address string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Verify a message signature made by wallet sign",
		Long: `Verify a signature made by "cybertensor wallet sign". Exit status 0 when it is
valid, 1 when it is not. With --address, the public key must also belong to that
address.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := readMessage(msg, msgFile, cmd.Flags().Changed("message"))
			if err != nil {
				return err
			}
			pub, err := wallet.ParsePublicKeyHex(pubHex)
			if err != nil {
				return usageError(fmt.Errorf("--public-key: %w", err))
			}
			sig, err := hex.DecodeString(sigHex)
			if err != nil || len(sig) != wallet.SignatureSize {
				return usageError(fmt.Errorf("--signature: %w: want %d bytes of hex", wallet.ErrInvalidSignature, wallet.SignatureSize))
			}
			if address != "" {
				addr, _, err := wallet.ParseAddress(address)
				if err != nil {
					return usageError(fmt.Errorf("--address: %w", err))
				}
				if addr != pub.Address() {
					return &exitError{code: exitFailure, err: fmt.Errorf("public key %s does not belong to %s", pub.Hex(), address)}
				}
			}
			valid := pub.VerifyMessage(m, sig)
			if f.json {
				if err := writeJSON(cmd.OutOrStdout(), map[string]any{"valid": valid, "address": pub.Address().String()}); err != nil {
					return err
				}
			} else if valid {
				fmt.Fprintf(cmd.OutOrStdout(), "valid signature by %s\n", pub.Address())
			}
			if !valid {
				return &exitError{code: exitFailure, err: errors.New("invalid signature")}
			}
			return nil
		},
	}
	addJSONFlag(cmd, &f)
	cmd.Flags().StringVar(&pubHex, "public-key", "", "signer's public key (hex), as printed by wallet sign")
	cmd.Flags().StringVar(&sigHex, "signature", "", "the signature (hex)")
	cmd.Flags().StringVar(&address, "address", "", "also require the key to have this address")
	cmd.Flags().StringVar(&msg, "message", "", "the message")
	cmd.Flags().StringVar(&msgFile, "message-file", "", "read the message from this file")
	cmd.MarkFlagRequired("public-key")
	cmd.MarkFlagRequired("signature")
	return cmd
}

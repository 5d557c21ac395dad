package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/internal/lockfile"
)

// Environment variables read by the command.
const (
	envHome     = "CYBERTENSOR_HOME"
	envPassword = "CYBERTENSOR_PASSWORD"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1 // the operation failed
	exitUsage   = 2 // bad flags, arguments or input
)

// exitError carries an exit status with an error.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError marks err as the user's mistake (exit status 2).
func usageError(err error) error { return &exitError{code: exitUsage, err: err} }

// inUseAs says that what is in use, if err is another process holding a
// lock (lockfile.InUseError), naming that process; any other error is
// returned as it is.
func inUseAs(what string, err error) error {
	var inUse *lockfile.InUseError
	if errors.As(err, &inUse) {
		return fmt.Errorf("%s is %w", what, inUse)
	}
	return err
}

// app holds the global flags and what they resolve to.
type app struct {
	env       env
	home      string
	logLevel  string
	logFormat string
	log       *slog.Logger
	// homeErr is why --home could not be resolved, if it could not.
	homeErr error
	// epoch computes Yuma consensus for chains this process runs.
	epoch chain.EpochFunc
}

func run(ctx context.Context, args []string, e env) int {
	return runWith(ctx, args, e, nil)
}

// runWith runs the command tree; configure, if set, adjusts the app first
// (tests use it to swap the epoch function).
func runWith(ctx context.Context, args []string, e env, configure func(*app)) int {
	a := &app{env: e, epoch: chain.NewYumaEpoch()}
	if configure != nil {
		configure(a)
	}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(e.stderr, "error: %v\n", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if isFlagError(err) {
		return exitUsage
	}
	return exitFailure
}

// isFlagError recognizes cobra's errors for unknown commands and flags.
func isFlagError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "flag needs an argument", "invalid argument", "required flag", "accepts ", "requires at least", "if any flags in the group"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "cybertensor",
		Short: "A peer-to-peer network where machines validate each other's AI work and a chain rewards it",
		Long: `cybertensor runs neurons (miners and validators) on a libp2p swarm, anchors their
scores on a chain with Yuma consensus, and shares content-addressed knowledge.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return a.setup()
		},
	}
	defHome := "~/.cybertensor"
	if h := a.env.getenv(envHome); h != "" {
		defHome = h
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.home, "home", defHome, "cybertensor home directory (env "+envHome+")")
	pf.StringVar(&a.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	pf.StringVar(&a.logFormat, "log-format", "text", "log format on stderr: text or json")

	root.AddGroup(
		&cobra.Group{ID: "keys", Title: "Keys:"},
		&cobra.Group{ID: "consensus", Title: "Network:"},
	)
	root.AddGroup(&cobra.Group{ID: "chain", Title: "Chain:"})
	w := a.walletCommand()
	w.GroupID = "keys"
	root.AddCommand(w)
	for _, c := range []*cobra.Command{a.minerCommand(), a.validatorCommand(), a.gatewayCommand()} {
		c.GroupID = "consensus"
		root.AddCommand(c)
	}
	ln := a.localnetCommand()
	ln.GroupID = "consensus"
	root.AddCommand(ln)
	kc := a.knowledgeCommand()
	kc.GroupID = "consensus"
	root.AddCommand(kc)
	dc := a.dashboardCommand()
	dc.GroupID = "consensus"
	root.AddCommand(dc)
	mc := a.modelCommand()
	mc.GroupID = "consensus"
	root.AddCommand(mc)
	sc := a.scoringCommand()
	sc.GroupID = "consensus"
	root.AddCommand(sc)
	for _, c := range []*cobra.Command{a.chainCommand(), a.subnetsCommand(), a.stakeCommand(), a.delegateCommand(),
		a.weightsCommand(), a.metagraphCommand(), a.commitmentsCommand(), a.faucetCommand(),
		a.rootNetworkCommand()} {
		c.GroupID = "chain"
		root.AddCommand(c)
	}
	children := a.childrenCommand()
	children.GroupID = "chain"
	root.AddCommand(children)
	return root
}

// setup resolves the global flags: home directory and logger.
func (a *app) setup() error {
	// Commands that do not touch the home (scoring epoch) must work
	// without one, so a bad --home is reported only when it is used.
	if home, err := a.expandHome(a.home); err != nil {
		a.homeErr = usageError(err)
	} else {
		a.home = home
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(a.logLevel)); err != nil {
		return usageError(fmt.Errorf("--log-level %q: want debug, info, warn or error", a.logLevel))
	}
	opts := &slog.HandlerOptions{Level: level}
	switch a.logFormat {
	case "text":
		a.log = slog.New(slog.NewTextHandler(a.env.stderr, opts))
	case "json":
		a.log = slog.New(slog.NewJSONHandler(a.env.stderr, opts))
	default:
		return usageError(fmt.Errorf("--log-format %q: want text or json", a.logFormat))
	}
	return nil
}

func (a *app) expandHome(p string) (string, error) {
	if p == "" {
		return "", errors.New("--home is empty")
	}
	if p == "~" || strings.HasPrefix(p, "~/") {
		uh, err := a.env.userHome()
		if err != nil {
			return "", fmt.Errorf("--home %s: cannot find the user's home directory: %w", p, err)
		}
		p = filepath.Join(uh, strings.TrimPrefix(p, "~"))
	}
	return filepath.Abs(p)
}

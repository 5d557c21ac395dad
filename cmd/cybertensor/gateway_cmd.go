package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/gateway"
	"github.com/cybertensor/cybertensor/gateway/metering"
	"github.com/cybertensor/cybertensor/node"
	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/wallet"
)

// gatewayMeters are the key store, limiter and usage ledger the gateway
// serves with, and what closes them.
type gatewayMeters struct {
	auth  gateway.Authenticator
	limit gateway.Limiter
	rec   gateway.Recorder
	close func() error
	// ledger and ledgerFile are the usage ledger the admin address
	// serves reads of (nil: none to serve).
	ledger     *metering.Ledger
	ledgerFile string
}

// openGatewayMeters opens the API key file (it must exist: the gateway
// never serves without keys), the usage ledger under the home (with its
// metrics on reg), and a limiter fed the day's usage so far, so a restart
// grants no fresh quota. Tests replace it.
var openGatewayMeters = func(a *app, keysFile string, reg prometheus.Registerer) (gatewayMeters, error) {
	kcfg := metering.DefaultKeyStoreConfig()
	kcfg.Logger = a.log
	keys, err := metering.OpenKeyStore(keysFile, kcfg)
	if errors.Is(err, fs.ErrNotExist) {
		return gatewayMeters{}, fmt.Errorf("no API keys at %s: the gateway does not serve without them; create one with \"cybertensor gateway keys add --name NAME\"", keysFile)
	} else if err != nil {
		return gatewayMeters{}, err
	}
	lcfg := metering.DefaultLedgerConfig()
	lcfg.Logger, lcfg.Registerer = a.log, reg
	ledgerFile := defaultGatewayUsageFile(a.home)
	if err := os.MkdirAll(filepath.Dir(ledgerFile), 0o700); err != nil {
		return gatewayMeters{}, err
	}
	ledger, err := metering.OpenLedger(ledgerFile, lcfg)
	if err != nil {
		return gatewayMeters{}, err
	}
	limiter := metering.NewLimiter(keys)
	now := time.Now()
	today, err := ledger.Today(now)
	if err != nil {
		ledger.Close()
		return gatewayMeters{}, fmt.Errorf("reading today's usage from %s: %w", ledgerFile, err)
	}
	limiter.Restore(today, now)
	return gatewayMeters{auth: keys, limit: limiter, rec: ledger, close: ledger.Close, ledger: ledger, ledgerFile: ledgerFile}, nil
}

// netuidList is the gateway's --netuid: repeatable, each a netuid or a
// comma list of them; the first one given replaces the default.
type netuidList struct {
	vals  []uint16
	given bool
}

var _ pflag.Value = (*netuidList)(nil)

func (l *netuidList) String() string {
	parts := make([]string, len(l.vals))
	for i, n := range l.vals {
		parts[i] = strconv.Itoa(int(n))
	}
	return strings.Join(parts, ",")
}

func (l *netuidList) Type() string { return "netuids" }

// Set parses one --netuid: 1 to 65535 each, no subnet twice.
func (l *netuidList) Set(v string) error {
	if !l.given {
		l.vals, l.given = nil, true
	}
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 16)
		if err != nil {
			return fmt.Errorf("%q: want a netuid (1 to 65535) or a comma list of them", v)
		}
		if n == 0 {
			return errors.New("0 is the root network, which has no miners: name subnets (1 and up)")
		}
		if slices.Contains(l.vals, uint16(n)) {
			return fmt.Errorf("subnet %d given twice", n)
		}
		l.vals = append(l.vals, uint16(n))
	}
	return nil
}

// subnetsText says netuids in words: "subnet 1", "subnets 1, 3".
func subnetsText(netuids []uint16) string {
	l := netuidList{vals: netuids}
	if len(netuids) == 1 {
		return fmt.Sprintf("subnet %d", netuids[0])
	}
	return "subnets " + strings.ReplaceAll(l.String(), ",", ", ")
}

// checkRegisteredOn looks the hotkey up on every subnet served and
// refuses, naming each subnet it is not registered on and how to
// register it there.
func checkRegisteredOn(ctx context.Context, c chainlink.Chain, hot wallet.Address, netuids []uint16, keys keyFlags) error {
	var missing []uint16
	for _, n := range netuids {
		_, err := c.Neuron(ctx, n, hot)
		switch {
		case errors.Is(err, chainlink.ErrNotFound):
			missing = append(missing, n)
		case err != nil:
			return fmt.Errorf("looking the hotkey up on subnet %d: %w", n, err)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	var how []string
	for _, n := range missing {
		how = append(how, fmt.Sprintf("cybertensor subnets register --netuid %d --wallet %s --hotkey %s", n, keys.wallet, keys.hotkey))
	}
	return fmt.Errorf("hotkey %q of wallet %q is not registered on %s, and miners serve registered callers only: register it (%s), then start again",
		keys.hotkey, keys.wallet, subnetsText(missing), strings.Join(how, "; "))
}

func (a *app) gatewayCommand() *cobra.Command {
	var (
		chainF  chainFlags
		keys    keyFlags
		netuids = netuidList{vals: []uint16{1}}
		listen  string
		p2p     []string
		keyFile string
		admin   string
	)
	cfg := gateway.DefaultConfig()
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "Serve subnets' miners to ordinary applications through an OpenAI-compatible API",
		Long: `Serve the miners of one or more subnets through an OpenAI-compatible HTTP API,
as a hotkey registered on each of them (miners serve registered callers only).
Applications written for OpenAI's API work by changing their base URL to
http://LISTEN/v1 and their key to one of the gateway's (--keys). Models, for
each --netuid N (repeatable, or a comma list: --netuid 1,3):
sn<N>/text.chat (chat and completions) and sn<N>/text.embed (embeddings);
GET /v1/models lists them and the gateway prints them at start. A request
naming sn<N>/… goes to a miner of subnet N only, chosen by incentive × trust,
its latency and load; one that fails before answering is retried on another
miner of that subnet. /healthz (miners per subnet) and /metrics are served on
the same address.

The usage ledger's reads are served on --admin (loopback only, default a port
the system picks), to requests carrying the admin token the gateway writes to
<home>/gateway/admin.token (0600) at start; <home>/gateway/admin.json records
the address. "cybertensor gateway usage" uses them while the gateway runs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			if keyFile == "" {
				keyFile = defaultGatewayKeysFile(a.home)
			}
			meters, err := openGatewayMeters(a, keyFile, reg)
			if err != nil {
				return err
			}
			defer meters.close()
			hot, err := a.hotkey(&keys)
			if err != nil {
				return err
			}
			c, err := a.dialChain(cmd.Context(), &chainF)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := checkRegisteredOn(cmd.Context(), c, hot.PublicKey().Address(), netuids.vals, keys); err != nil {
				return err
			}
			nc := node.DefaultConfig(hot)
			nc.ListenAddrs, nc.Registerer, nc.Logger = p2p, reg, slog.New(slog.DiscardHandler)
			h, err := node.New(cmd.Context(), nc)
			if err != nil {
				return fmt.Errorf("starting the libp2p host: %w", err)
			}
			defer h.Close()
			qc, err := protocol.NewClient(h, protocol.DefaultClientConfig())
			if err != nil {
				return err
			}
			defer qc.Close()
			cfg.Listen, cfg.Subnets = listen, netuids.vals
			gw, err := gateway.New(cfg, gateway.Deps{
				Metagraph: gateway.ChainMetagraph{Chain: c, Self: h.ID()},
				Querier:   gateway.ProtocolQuerier{Host: h, Client: qc},
				Auth:      meters.auth, Limiter: meters.limit, Recorder: meters.rec,
				Logger: a.log, Registerer: reg,
			})
			if err != nil {
				return err
			}
			defer gw.Close()
			fmt.Fprintf(cmd.OutOrStdout(), "gateway for %s at http://%s/v1 as hotkey %s (models %s; Ctrl-C to stop)\n",
				subnetsText(netuids.vals), gw.Addr(), hot.PublicKey().Address(), strings.Join(cfg.Models(), ", "))
			ga, err := a.serveMetersAdmin(cmd.OutOrStdout(), admin, meters)
			if err != nil {
				return err
			}
			if ga != nil {
				defer ga.Close()
			}
			return gw.Serve(cmd.Context())
		},
	}
	addChainConnFlags(cmd, &chainF, a.env.getenv)
	addHotkeyFlags(cmd, &keys)
	f := cmd.Flags()
	f.Var(&netuids, "netuid", "subnet to serve (repeatable, or a comma list such as 1,3); the hotkey must be registered on each")
	f.StringVar(&listen, "listen", cfg.Listen, "HTTP address of the API")
	f.StringArrayVar(&p2p, "p2p-listen", []string{"/ip4/127.0.0.1/tcp/0"}, "libp2p listen address of the gateway's host (repeatable); it only dials miners")
	f.StringVar(&keyFile, "keys", "", "API key file (default <home>/gateway/keys.json, where \"gateway keys add\" writes)")
	f.StringVar(&admin, "admin", defaultGatewayAdmin, "loopback address serving the usage ledger's reads to the admin token's holder (\"off\": none)")
	f.DurationVar(&cfg.Deadline, "deadline", cfg.Deadline, "longest an API request may take; past it the client gets 504")
	f.IntVar(&cfg.Retries, "retries", cfg.Retries, "other miners a request is tried on when its miner fails before answering")
	f.Float64Var(&cfg.Routing.Temperature, "temperature", cfg.Routing.Temperature, "softmax temperature of miner choice over incentive × trust (low: the best miners get nearly all requests)")
	f.IntVar(&cfg.Routing.MaxInFlight, "max-in-flight", cfg.Routing.MaxInFlight, "most requests one miner has at once")
	addCheck(cmd, func() error {
		if err := checkMultiaddrs("p2p-listen", p2p); err != nil {
			return err
		}
		switch {
		case cfg.Deadline <= 0 || cfg.Deadline > time.Hour:
			return fmt.Errorf("--deadline %v: want more than 0 and at most 1h", cfg.Deadline)
		case cfg.Retries < 0 || cfg.Retries > 16:
			return fmt.Errorf("--retries %d: want 0 to 16", cfg.Retries)
		case !(cfg.Routing.Temperature > 0):
			return fmt.Errorf("--temperature %v: must be positive", cfg.Routing.Temperature)
		case cfg.Routing.MaxInFlight < 1:
			return fmt.Errorf("--max-in-flight %d: at least 1", cfg.Routing.MaxInFlight)
		}
		if err := checkAdminAddr(admin); err != nil {
			return err
		}
		return checkHostPort("listen", listen)
	})
	cmd.AddCommand(a.gatewayAdminCommands()...)
	return cmd
}

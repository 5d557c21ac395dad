package localnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/gateway"
	"github.com/cybertensor/cybertensor/gateway/metering"
	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/protocol/pb"
	"github.com/cybertensor/cybertensor/subnet"
)

// gatewayMetagraphEvery is how often the localnet's gateway reads its
// subnets' miners: the chain is in the process, so often is cheap.
const gatewayMetagraphEvery = time.Second

// GatewaySummary is the gateway of a run (Config.Gateway) at its end.
type GatewaySummary struct {
	// URL is the API's base URL (http://ADDR/v1); Subnets the subnets it
	// served, each as the hotkey of that subnet's first validator, and
	// Models their models. Netuid and Hotkey are the first subnet's.
	URL     string          `json:"url"`
	Netuid  uint16          `json:"netuid"`
	Hotkey  string          `json:"hotkey"`
	Subnets []GatewaySubnet `json:"subnets"`
	Models  []string        `json:"models"`
	// KeyFile and Ledger are the API key file and the usage ledger (under
	// Config.GatewayDir, or removed with the run's directory).
	KeyFile string `json:"key_file"`
	Ledger  string `json:"ledger"`
	// Usage sums the ledger: in total and per miner (by hotkey).
	Usage  metering.Totals  `json:"usage"`
	Miners []metering.Group `json:"miners"`
}

// GatewaySubnet is one subnet a run's gateway served and the hotkey (its
// first validator's) it asked that subnet's miners as.
type GatewaySubnet struct {
	Netuid uint16 `json:"netuid"`
	Hotkey string `json:"hotkey"`
}

// chatSubnet reports whether a subnet's miners serve text.chat and
// text.embed in a localnet: those of a spec serving text.generate (qa)
// do, from the same retrieval model (or Config.Upstream).
func chatSubnet(spec *subnet.Spec) bool {
	return slices.Contains(spec.SynapseNames(), "text.generate") || slices.Contains(spec.SynapseNames(), subnet.SynapseChat)
}

// minerUsage counts the gateway's organic requests per miner as they are
// recorded: the dashboard's source of organic traffic. It passes every
// record to the ledger first and counts only what the ledger kept.
type minerUsage struct {
	next gateway.Recorder

	mu      sync.Mutex
	byMiner map[string]organic // by hotkey address
	// unserved counts requests no miner answered (no miner available).
	unserved int64
}

// organic is one miner's organic (gateway) traffic.
type organic struct {
	requests, tokens, failures int64
}

var _ gateway.Recorder = (*minerUsage)(nil)

// maxUsageMiners bounds the miners minerUsage counts (a subnet holds at
// most maxSubnetSize).
const maxUsageMiners = 4 * maxSubnetSize

// Record implements gateway.Recorder.
func (m *minerUsage) Record(u gateway.Usage) error {
	if err := m.next.Record(u); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if u.Miner == "" {
		m.unserved++
		return nil
	}
	o, ok := m.byMiner[u.Miner]
	if !ok && len(m.byMiner) >= maxUsageMiners {
		return nil
	}
	o.requests++
	o.tokens += max(0, u.PromptTokens) + max(0, u.CompletionTokens)
	if metering.Failed(u) {
		o.failures++
	}
	m.byMiner[u.Miner] = o
	return nil
}

// snapshot returns a copy of the counts.
func (m *minerUsage) snapshot() map[string]organic {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]organic, len(m.byMiner))
	for k, v := range m.byMiner {
		out[k] = v
	}
	return out
}

// bySubnet sends each query through the querier of its request's subnet
// (gateway.Querier), reads each subnet's miners leaving out that subnet's
// own gateway host (gateway.Metagraph) and hands each sampled answer to
// that subnet's validator (gateway.Organic): a localnet's validators are
// each registered on their own subnet only, miners serve only callers
// registered on the subnet asked, and a validator scores its own subnet.
type bySubnet struct {
	queriers map[uint16]gateway.Querier
	graphs   map[uint16]gateway.Metagraph
	organics map[uint16]gateway.Organic
}

func (b bySubnet) WantOrganic(netuid uint16, synapse string) bool {
	o, ok := b.organics[netuid]
	return ok && o.WantOrganic(netuid, synapse)
}

func (b bySubnet) Organic(a gateway.OrganicAnswer) {
	if o, ok := b.organics[a.Netuid]; ok {
		o.Organic(a)
	}
}

func (b bySubnet) Query(ctx context.Context, m gateway.Miner, req *pb.Request, onChunk func([]byte, bool) error) protocol.Result {
	q, ok := b.queriers[uint16(req.Netuid)]
	if !ok { // the gateway asks only the subnets it serves
		return protocol.Result{Peer: m.Peer, Status: protocol.StatusNotFound, Err: fmt.Errorf("localnet: the gateway has no host on subnet %d", req.Netuid)}
	}
	return q.Query(ctx, m, req, onChunk)
}

func (b bySubnet) Miners(ctx context.Context, netuid uint16) ([]gateway.Miner, error) {
	g, ok := b.graphs[netuid]
	if !ok {
		return nil, fmt.Errorf("localnet: the gateway does not serve subnet %d", netuid)
	}
	return g.Miners(ctx, netuid)
}

// localGateway is a run's gateway and what it meters with.
type localGateway struct {
	srv     *gateway.Server
	ledger  *metering.Ledger
	usage   *minerUsage
	summary GatewaySummary
	cancel  context.CancelFunc
	done    chan struct{} // closed when Serve returns
	once    sync.Once
}

// startGateway serves the OpenAI-compatible API on cfg.Gateway for the
// subnets of vs, the first validator of each subnet whose miners serve
// text.chat: each subnet's queries go through its validator's libp2p host
// and query client (its hotkey, registered on that subnet only, is the
// identity the subnet's miners admit), with one key file and ledger in
// cfg.GatewayDir or under dir. It makes an API key, prints the URL, the
// key and every model to out and tells cfg.OnGateway.
func startGateway(ctx context.Context, cfg Config, out io.Writer, c chainlink.Chain, vs []*member, dir string) (_ *localGateway, err error) {
	if len(vs) == 0 {
		return nil, errGatewaySubnet
	}
	gdir := cfg.GatewayDir
	if gdir == "" {
		gdir = filepath.Join(dir, "gateway")
	}
	if err := os.MkdirAll(gdir, 0o700); err != nil {
		return nil, fmt.Errorf("localnet: gateway directory: %w", err)
	}
	kcfg := metering.DefaultKeyStoreConfig()
	kcfg.Create, kcfg.Logger = true, cfg.Logger
	keyFile := filepath.Join(gdir, "keys.json")
	keys, err := metering.OpenKeyStore(keyFile, kcfg)
	if err != nil {
		return nil, fmt.Errorf("localnet: gateway keys: %w", err)
	}
	// No limits: the localnet's one user is whoever runs it.
	key, secret, err := keys.Add("localnet", metering.Limits{})
	if err != nil {
		return nil, fmt.Errorf("localnet: making a gateway key: %w", err)
	}
	lcfg := metering.DefaultLedgerConfig()
	lcfg.Logger = cfg.Logger
	ledgerFile := filepath.Join(gdir, "usage.db")
	ledger, err := metering.OpenLedger(ledgerFile, lcfg)
	if err != nil {
		return nil, fmt.Errorf("localnet: gateway ledger: %w", err)
	}
	defer func() {
		if err != nil {
			ledger.Close()
		}
	}()
	usage := &minerUsage{next: ledger, byMiner: map[string]organic{}}
	gcfg := gateway.DefaultConfig()
	gcfg.Listen, gcfg.MetagraphEvery = cfg.Gateway, gatewayMetagraphEvery
	by := bySubnet{queriers: map[uint16]gateway.Querier{}, graphs: map[uint16]gateway.Metagraph{}, organics: map[uint16]gateway.Organic{}}
	var served []GatewaySubnet
	for _, v := range vs {
		h := v.validator.Host()
		gcfg.Subnets = append(gcfg.Subnets, v.netuid)
		by.queriers[v.netuid] = gateway.ProtocolQuerier{Host: h, Client: v.validator.Client()}
		by.graphs[v.netuid] = gateway.ChainMetagraph{Chain: c, Self: h.ID()}
		by.organics[v.netuid] = v.validator
		served = append(served, GatewaySubnet{Netuid: v.netuid, Hotkey: v.hot.PublicKey().Address().String()})
	}
	srv, err := gateway.New(gcfg, gateway.Deps{
		Metagraph: by, Querier: by, Organic: by,
		Auth: keys, Limiter: metering.NewLimiter(keys), Recorder: usage,
		Logger: cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("localnet: %w", err)
	}
	g := &localGateway{srv: srv, ledger: ledger, usage: usage, done: make(chan struct{})}
	g.summary = GatewaySummary{URL: baseURL(srv.Addr()), Netuid: served[0].Netuid, Hotkey: served[0].Hotkey, Subnets: served,
		Models: gcfg.Models(), KeyFile: keyFile, Ledger: ledgerFile}
	var gctx context.Context
	gctx, g.cancel = context.WithCancel(ctx)
	go func() {
		defer close(g.done)
		if err := srv.Serve(gctx); err != nil && !errors.Is(err, gateway.ErrClosed) {
			cfg.Logger.Error("localnet gateway stopped", "err", err)
		}
	}()
	fmt.Fprintf(out, "gateway: %s key %s\n  models %s\n", g.summary.URL, secret, strings.Join(g.summary.Models, ", "))
	for _, sn := range served {
		fmt.Fprintf(out, "  subnet %d as its validator %s\n", sn.Netuid, sn.Hotkey)
	}
	fmt.Fprintf(out, "  key %s in %s, usage ledger %s\n", key.ID, keyFile, ledgerFile)
	if cfg.OnGateway != nil {
		cfg.OnGateway(g.summary.URL, secret)
	}
	return g, nil
}

// baseURL is the API's base URL at addr (an unspecified host is reached
// on the IPv4 loopback).
func baseURL(addr net.Addr) string {
	host, port := "127.0.0.1", "0"
	if a, ok := addr.(*net.TCPAddr); ok {
		port = fmt.Sprint(a.Port)
		if !a.IP.IsUnspecified() {
			host = a.IP.String()
		}
	}
	return "http://" + net.JoinHostPort(host, port) + "/v1"
}

// stop stops serving (requests in flight are cancelled and recorded) and
// sums the ledger. It is safe to call more than once and on nil.
func (g *localGateway) stop(log *slog.Logger) *GatewaySummary {
	if g == nil {
		return nil
	}
	g.once.Do(func() {
		g.cancel()
		g.srv.Close()
		<-g.done
		sum, err := g.ledger.Summarize(metering.Query{})
		if err != nil {
			log.Error("localnet: summing the gateway's usage", "err", err)
		}
		g.summary.Usage, g.summary.Miners = sum.Total, sum.Miners
		g.ledger.Close()
	})
	s := g.summary
	return &s
}

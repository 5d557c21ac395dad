package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/gateway"
	"github.com/cybertensor/cybertensor/neuron"
)

// validatorGatewayFlags are validator run's flags of the gateway it may
// serve (organic scoring).
type validatorGatewayFlags struct {
	listen   string // "": no gateway
	keysFile string
	admin    string
	fraction float64
}

func addValidatorGatewayFlags(cmd *cobra.Command, g *validatorGatewayFlags) {
	f := cmd.Flags()
	f.StringVar(&g.listen, "gateway", "", "also serve the subnet's miners to applications through the OpenAI-compatible gateway on this HTTP address (as \"cybertensor gateway\" does, through the validator's own host), and score a sample of their answers (--organic-fraction)")
	f.StringVar(&g.keysFile, "gateway-keys", "", "API key file of --gateway (default <home>/gateway/keys.json, where \"gateway keys add\" writes)")
	f.StringVar(&g.admin, "gateway-admin", defaultGatewayAdmin, "loopback address serving --gateway's usage ledger reads to the admin token's holder (\"off\": none)")
	f.Float64Var(&g.fraction, "organic-fraction", 0.1, "fraction of --gateway's requests whose answers the validator scores with its spec's mechanism for their synapse (one whose reward does not read expected), into the same scores as its own tasks (0: none)")
	addCheck(cmd, func() error {
		if !(g.fraction >= 0 && g.fraction <= 1) {
			return fmt.Errorf("--organic-fraction %v: want 0 to 1", g.fraction)
		}
		if g.listen == "" {
			return nil
		}
		if err := checkAdminAddr(g.admin); err != nil {
			return err
		}
		return checkHostPort("gateway", g.listen)
	})
}

// validatorGateway is the gateway validator run serves: its meters are
// open before the validator starts (a missing key file stops it before it
// touches the chain), and it serves once the validator runs.
type validatorGateway struct {
	flags  *validatorGatewayFlags
	meters gatewayMeters
	reg    prometheus.Registerer
}

// openValidatorGateway opens the key file and usage ledger of --gateway
// (nil without it); reg (nil: a registry of its own) gets its metrics.
func (a *app) openValidatorGateway(g *validatorGatewayFlags, reg prometheus.Registerer) (*validatorGateway, error) {
	if g.listen == "" {
		return nil, nil
	}
	keysFile := g.keysFile
	if keysFile == "" {
		keysFile = defaultGatewayKeysFile(a.home)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	meters, err := openGatewayMeters(a, keysFile, reg)
	if err != nil {
		return nil, fmt.Errorf("--gateway: %w", err)
	}
	return &validatorGateway{flags: g, meters: meters, reg: reg}, nil
}

// close closes the meters (of a gateway that never served).
func (vg *validatorGateway) close() {
	if vg != nil {
		vg.meters.close()
	}
}

// serve serves the gateway of validator v until ctx ends, with v as its
// organic scorer; it returns once the gateway listens, and stop stops it
// and closes the meters.
func (vg *validatorGateway) serve(ctx context.Context, a *app, out io.Writer, c chainlink.Chain, v *neuron.Validator, netuid uint16) (stop func(), err error) {
	g, meters, reg := vg.flags, vg.meters, vg.reg
	closers := []func(){func() { meters.close() }}
	stop = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	cfg := gateway.DefaultConfig()
	cfg.Listen, cfg.Subnets = g.listen, []uint16{netuid}
	gw, err := gateway.New(cfg, gateway.Deps{
		Metagraph: gateway.ChainMetagraph{Chain: c, Self: v.ID()},
		Querier:   gateway.ProtocolQuerier{Host: v.Host(), Client: v.Client()},
		Auth:      meters.auth, Limiter: meters.limit, Recorder: meters.rec, Organic: v,
		Logger: a.log, Registerer: reg,
	})
	if err != nil {
		return nil, fmt.Errorf("--gateway: %w", err)
	}
	served := make(chan error, 1)
	go func() { served <- gw.Serve(ctx) }()
	closers = append(closers, func() {
		gw.Close()
		if err := <-served; err != nil && !errors.Is(err, gateway.ErrClosed) {
			a.log.Error("the gateway stopped", "err", err)
		}
	})
	fmt.Fprintf(out, "gateway for subnet %d at http://%s/v1 (models sn%d/text.chat, sn%d/text.embed); scoring %.0f%% of what a mechanism of the spec can score\n",
		netuid, gw.Addr(), netuid, netuid, 100*g.fraction)
	ga, err := a.serveMetersAdmin(out, g.admin, meters)
	if err != nil {
		return nil, err
	}
	if ga != nil {
		closers = append(closers, ga.Close)
	}
	return stop, nil
}

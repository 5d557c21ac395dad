package main

import (
	"context"
	"fmt"
	"net"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/cybertensor/cybertensor/dashboard"
	"github.com/cybertensor/cybertensor/dashboard/chainsource"
)

// dashboardNamespace prefixes the metrics of "cybertensor dashboard".
const dashboardNamespace = "cybertensor_chain"

func (a *app) dashboardCommand() *cobra.Command {
	var f chainFlags
	var listen string
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Serve the web dashboard of a running chain: subnets, metagraphs, incentive and dividends over epochs",
		Long: `Serve the web dashboard (the one localnet serves) for the chain at --chain: a
table per subnet of every neuron's stake, incentive, dividends, trust, emission
and validator permit, a chart of incentive and dividends over the epochs seen
since the dashboard started, the same as JSON at /api/state, and Prometheus
metrics at /metrics (cybertensor_chain_block, cybertensor_chain_epochs_total,
cybertensor_chain_neuron_{stake,incentive,dividends,trust,emission} labelled by
netuid and uid). What only the neurons themselves count (queries, heartbeats
heard, knowledge shared) a chain cannot tell: the page shows it as unknown.
The dashboard has no authentication: keep --listen on loopback, or put it
behind a proxy that has. It runs until Ctrl-C; while the chain node is away it
shows what it last read.
  cybertensor dashboard --chain http://127.0.0.1:26657 --listen 127.0.0.1:8080`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
			c, err := a.dialChain(dctx, &f)
			cancel()
			if err != nil {
				return err
			}
			defer c.Close()
			scfg := chainsource.DefaultConfig()
			scfg.Logger = a.log
			src, err := chainsource.New(cmd.Context(), c, scfg)
			if err != nil {
				return err
			}
			defer src.Close()
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
				dashboard.NewCollector(src, dashboardNamespace))
			dcfg := dashboard.DefaultConfig()
			dcfg.Addr, dcfg.Gatherer, dcfg.Logger = listen, reg, a.log
			srv, err := dashboard.Start(cmd.Context(), dcfg, src)
			if err != nil {
				return &exitError{code: exitFailure, err: err}
			}
			defer srv.Close()
			if host, _, _ := net.SplitHostPort(listen); !isLoopback(host) {
				a.log.Warn("the dashboard listens beyond loopback and has no authentication", "listen", listen)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "chain %s at %s\ndashboard: %s\n", c.ChainID(), f.url, srv.URL())
			<-cmd.Context().Done()
			return nil
		},
	}
	addChainConnFlags(cmd, &f, a.env.getenv)
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "serve the dashboard on this address (port 0: any free port)")
	addCheck(cmd, func() error {
		if _, _, err := net.SplitHostPort(listen); err != nil {
			return fmt.Errorf("--listen %q: want HOST:PORT, e.g. 127.0.0.1:8080", listen)
		}
		return nil
	})
	return cmd
}

// isLoopback reports whether host names only this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

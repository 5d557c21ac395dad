// Package dashboard serves a live web view of a running network: a single
// embedded HTML page (vanilla JavaScript, inline SVG, no external assets)
// showing each subnet's metagraph, incentive and dividends over epochs, and
// gossip and knowledge statistics, plus the JSON it is drawn from and
// Prometheus metrics.
//
// The server reads everything it shows from a [Source], a one-method
// interface the caller implements, usually by returning a snapshot it keeps
// up to date; [State] is a plain struct, so a source owes the dashboard
// nothing but values. [NewCollector] exports the same State to Prometheus.
// A source that reads only the chain (package chainsource) sets
// State.ChainOnly, and the page and metrics then show what only the
// neurons count (queries, heartbeats, knowledge) as unknown, not as zeros.
//
//	srv, err := dashboard.Start(ctx, cfg, src)
//	if err != nil {
//		return err
//	}
//	defer srv.Close()
//	fmt.Println("dashboard:", srv.URL())
//
// # Endpoints
//
//   - / the page, which polls /api/state every second
//   - /api/state the Source's State as JSON
//   - /metrics the Config's Prometheus Gatherer (404 without one)
//   - /healthz "ok"
package dashboard

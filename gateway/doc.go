// Package gateway lets ordinary applications use what subnets' miners
// produce through an OpenAI-compatible HTTP API: it authenticates API keys,
// routes each request to a miner of the subnet its model names
// (sn<netuid>/…; Config.Subnets may list several) chosen from the metagraph,
// forwards it over the query protocol (protocol/SPEC.md §2) and answers in
// OpenAI's JSON or server-sent events, and it meters what each key used,
// keeping each answer's signed receipt.
//
// The server consumes small interfaces (Authenticator, Limiter, Recorder)
// so key storage, rate limits and the usage ledger stay apart from the
// HTTP and routing code; package gateway/metering implements them.
//
// # Serving
//
// New binds the HTTP address; Serve answers until its context ends or
// Close is called:
//
//	gw, err := gateway.New(cfg, gateway.Deps{
//		Metagraph: gateway.ChainMetagraph{Chain: chain, Self: host.ID()},
//		Querier:   gateway.ProtocolQuerier{Host: host, Client: client},
//		Auth:      keys, Limiter: limits, Recorder: ledger,
//	})
//	defer gw.Close()
//	err = gw.Serve(ctx)
//
// # Routing
//
// A Picker chooses each request's miner: a softmax over incentive ×
// trust with a temperature, divided by the miner's latency (EWMA) and
// requests in flight, with a per-miner cap and exponential backoff after
// failures. It does no I/O: time and randomness are injected. A request
// whose miner fails before the client has had a byte goes to the next
// choice; a stream that fails later ends with an error event.
// docs/gateway-api.md describes the API, errors and routing.
package gateway

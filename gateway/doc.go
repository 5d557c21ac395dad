// Package gateway lets ordinary applications use what a subnet's miners
// produce through an OpenAI-compatible HTTP API: it authenticates API keys,
// routes each request to a miner of the subnet chosen from the metagraph,
// forwards it over the query protocol (protocol/SPEC.md §2) and answers in
// OpenAI's JSON or server-sent events, and it meters what each key used,
// keeping each answer's signed receipt.
//
// The server consumes small interfaces (Authenticator, Limiter, Recorder)
// so key storage, rate limits and the usage ledger stay apart from the
// HTTP and routing code; package gateway/metering implements them.
package gateway

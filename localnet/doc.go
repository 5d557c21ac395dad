// Package localnet runs a whole cybertensor network in one process with
// zero setup: the embedded chain, funded wallets, a question-answering
// subnet, validators and miners as real libp2p hosts on loopback, and
// optional adversaries (a lazy miner answering at random, a miner that goes
// offline mid-run). It reports the metagraph as epochs pass and a summary
// at the end, and can serve a live web dashboard of the run (package
// dashboard) with Prometheus metrics of the metagraph (Config.Dashboard).
//
// With Config.Gateway it also serves the qa subnet to ordinary
// applications through the OpenAI-compatible gateway (package gateway),
// as the subnet's first validator: through that validator's own libp2p
// host and query client, with an API key it makes and a usage ledger
// (package gateway/metering). The honest qa miners then answer text.chat
// and text.embed too, from their retrieval model or Config.Upstream, and
// the dashboard shows each miner's organic requests, tokens and failures.
package localnet

// Package localnet runs a whole cybertensor network in one process with
// zero setup: the embedded chain, funded wallets, a question-answering
// subnet, validators and miners as real libp2p hosts on loopback, and
// optional adversaries (a lazy miner answering at random, a miner that goes
// offline mid-run). It reports the metagraph as epochs pass and a summary
// at the end, and can serve a live web dashboard of the run (package
// dashboard) with Prometheus metrics of the metagraph (Config.Dashboard).
//
// On a model subnet (the built-in "model", or a spec whose tasks come from
// commitments and are evaluated by the built-in charlm family) miners are
// paid for language models: the honest ones train charlm models on more or
// less of the subnet's corpus, publish them in their knowledge library and
// commit their CIDs; a lazy one commits a useless model and a copier (a
// miner there) commits the leader's CID later. The validators evaluate
// them, and Summary.Models ranks them with each one's loss and incentive.
//
// With Config.Gateway it also serves every subnet whose miners serve
// text.chat (qa, and spec subnets like it) to ordinary applications
// through the OpenAI-compatible gateway (package gateway), each subnet as
// its first validator: through that validator's own libp2p host and query
// client (a localnet's validators are registered on their own subnet
// only), with one API key it makes and one usage ledger (package
// gateway/metering). The honest miners of those subnets then answer
// text.chat and text.embed too, from their retrieval model or
// Config.Upstream, and the dashboard shows each miner's organic requests,
// tokens and failures.
package localnet

// Package localnet runs a whole cybertensor network in one process with
// zero setup: the embedded chain, funded wallets, a question-answering
// subnet, validators and miners as real libp2p hosts on loopback, and
// optional adversaries (a lazy miner answering at random, a miner that goes
// offline mid-run). It reports the metagraph as epochs pass and a summary
// at the end, and can serve a live web dashboard of the run (package
// dashboard) with Prometheus metrics of the metagraph (Config.Dashboard).
package localnet

// Package hostile holds the flood-mix suite (issue #19): a small network
// (embedded chain, the qa subnet, validators and miners) runs in a child
// process while the test, as an outside attacker with fresh, unregistered
// keys, floods one miner six ways at once — DHT provider records, request
// frames held open, idle streams on every protocol, connections,
// requests dripped a byte at a time, and refused requests as fast as they
// are answered. Meanwhile honest peers work: a registered neuron queries
// the miner, looks the subnet up in its DHT and fetches knowledge from it,
// and newcomers with fresh keys do the same. The suite checks the
// property node/doc.go states: what unregistered peers can make a neuron
// hold is bounded, and registered neurons keep their share of every limit.
//
// The package has only tests; `go test ./tests/hostile -v` runs the short
// mix (as CI does), and `-args -attack 60s` a longer one (BENCHMARKS.md,
// "Under attack").
package hostile

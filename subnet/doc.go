// Package subnet is cybertensor's incentive language: a subnet's
// declarative spec (YAML), which says what the subnet's miners serve, how
// its validators make tasks and query miners, and how a response is scored
// — a reward expression in CEL (github.com/google/cel-go) over the response,
// with functions this package provides. Opening a subnet registers the
// SHA-256 of the spec's text on chain (register_network's spec_hash); the
// text itself is shared in the knowledge library, where that hash names it.
//
// A spec is validated as a whole before it is used: unknown fields, unknown
// synapse types, out-of-range numbers and reward expressions that do not
// compile to a number are rejected with the line they are on and why.
package subnet

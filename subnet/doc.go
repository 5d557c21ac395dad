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
//
// # Version 2
//
// A spec with version: 2 may also declare custom synapses (Synapse, with
// JSON Schemas for the request and answer, checked by ValidateRequest and
// ValidateAnswer), take tasks from programs and endpoints (FromExec,
// FromHTTP; task lines, ParseTaskLines and Synapse.TaskFromLine) or from a
// dataset by CID, judge answers before the reward (Judge), split the
// subnet into mechanisms (Mechanism, EffectiveMechanisms), and reward with
// v2's variables and functions (NewRewardV2, Spec.CompileReward). Lock
// writes the files: section — the knowledge CID of every file the spec
// refers to (ReferencedFiles) — so the spec's hash covers them; Resolve
// checks the files against it. A spec without version is v1 and means
// what it always meant. docs/subnet-language.md is the reference.
//
// # Built-in subnets
//
// Builtin returns the specs in specs/ by name (BuiltinNames):
//
//   - qa: questions on the documents validators publish (text.generate);
//     reward: the expected answer, faster is better.
//   - storage: miners keep the subnet's knowledge objects; validators
//     challenge a random byte range of an object they hold, by CID, with a
//     fresh nonce (storage.prove); reward: a valid proof, faster is better.
//   - compute: verifiable work (compute.run), hash-preimage jobs; reward:
//     correct results per unit time (rate_score).
//
// # Tasks
//
// A Task is one query and its check, made as a pure function of its
// inputs and a random source, so validators' I/O stays outside: TextTask
// (a question with a known answer), StorageTask (a StorageChallenge and
// the challenged bytes from the validator's own copy) and Generator.Next
// (a ComputeJob of a built-in generator, GenHashPreimage or
// GenArithmetic). Task.Response turns a miner's answer into the reward's
// variables: valid is the task's own check — the proof check of a
// challenge, the result check of a job. The bodies on the wire are JSON
// (protocol/SPEC.md, "Synapse bodies"); their decoders bound and check
// everything a peer sends and fail with errors wrapping ErrBadBody.
package subnet

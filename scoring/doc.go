// Package scoring computes weights and Yuma consensus from validator scores.
//
// It is pure math: no I/O, no goroutines, no globals.
//
// # The epoch
//
// Epoch runs one Yuma consensus epoch exactly as shared/spec/epoch.md
// defines it: activity, stake, new validator permits (top k by stake, ties
// to the higher uid), active stake, masked row-normalized weights, the
// κ-weighted median consensus, clipping, validator trust, ranks, trust,
// incentive, bonds (mask, column normalization, the ρ penalty blend, the
// EMA, u16 storage after column-max upscaling), dividends, and the emission
// split with its zero-sum fallback.
//
// Arithmetic is fixed point (Fixed: 60 fractional bits in a uint64, values
// below 16) with 128-bit intermediates from math/bits; there is no
// floating point in the epoch, so every machine computes the same bits.
// Sums are exact integer sums, so the result does not depend on how uids
// are numbered (except the spec's stake tie-break at the permit boundary).
// Weights and bonds stay sparse: a 4,096-uid subnet costs what its
// non-zero entries cost. One pass over the rows checks them and sums the
// kept weights; a column pass then gathers the masked weights and bonds a
// block of columns at a time and works column by column: preranks, the
// weighted median (a radix selection over stake buckets), clipping, ranks,
// the bonds EMA and the bonds to store. Normalizations divide by
// multiply-and-shift with one 128-bit division per row or column.
// EpochWith gives the same results in a Workspace the caller keeps from
// one epoch to the next, which saves allocating and clearing the working
// memory each time.
//
// ParseInput and Output.MarshalJSON are the spec's JSON contract, used by
// "cybertensor scoring epoch"; errors name the offending field.
//
// # Weights a validator sets
//
// Scores keeps a moving average of each uid's measured score, restarting
// when a new hotkey takes the uid. Process turns scores into weights as
// Bittensor's process_weights_for_netuid does (non-finite and negative
// scores dropped, enough weights for min_allowed_weights, capped at
// max_weight_limit by NormalizeMaxWeight); ToU16 and FromU16 convert to and
// from the chain's u16 form; LegalWeights does all of it and guarantees the
// chain's max_weight_limit check passes.
package scoring

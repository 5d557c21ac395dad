// Package scoring computes weights and Yuma consensus from validator scores.
//
// It is pure math: no I/O, no goroutines, no globals. The epoch follows the
// specification in shared/spec/epoch.md and uses fixed-point arithmetic so
// that every CPU computes identical bytes.
package scoring

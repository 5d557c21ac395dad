// Package protocol defines the wire formats and stream protocols neurons use
// to talk to each other: queries between validators and miners, and
// knowledge transfer. The normative description is protocol/SPEC.md.
package protocol

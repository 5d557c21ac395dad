package chain

import (
	"strconv"
	"strings"
)

// BaseUnitsPerToken is how many base units make one token: the chain
// counts base units, people read tokens with up to nine decimals.
const BaseUnitsPerToken = 1_000_000_000

// FormatTokens prints an amount of base units as tokens, e.g. 1500000000
// as "1.5", with no trailing zeros.
func FormatTokens(v uint64) string {
	whole, frac := v/BaseUnitsPerToken, v%BaseUnitsPerToken
	if frac == 0 {
		return strconv.FormatUint(whole, 10)
	}
	f := strconv.FormatUint(frac, 10)
	f = strings.Repeat("0", 9-len(f)) + f
	return strconv.FormatUint(whole, 10) + "." + strings.TrimRight(f, "0")
}

// tokens formats an amount for an error's detail: "1.5 tokens".
func tokens(v uint64) string { return FormatTokens(v) + " tokens" }

// tokenAmounts names the hyperparameters, globals and event attributes
// that hold token amounts (in base units).
var tokenAmounts = map[string]bool{
	// hyperparameters and globals
	"burn": true, "min_burn": true, "max_burn": true,
	"network_min_lock_cost": true, "faucet_amount": true, "block_emission": true,
	"hotkey_swap_cost": true,
	// event attributes
	"amount": true, "burned": true, "locked": true, "emission": true,
}

// IsTokenAmount reports whether the named hyperparameter, global or event
// attribute is an amount of tokens (held in base units), which people
// read and type as tokens.
func IsTokenAmount(name string) bool { return tokenAmounts[name] }

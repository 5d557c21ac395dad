package wallet

import (
	"fmt"
)

// DefaultAddressPrefix is the bech32 prefix of cybertensor account addresses.
const DefaultAddressPrefix = "ct"

// AddressSize is the length of an account address.
const AddressSize = 20

// Address is an account address: RIPEMD160(SHA256(compressed public key)),
// as in the Cosmos SDK. Its text form is bech32 with a chain prefix.
type Address [AddressSize]byte

// String returns the address in bech32 with DefaultAddressPrefix.
func (a Address) String() string { return a.Bech32(DefaultAddressPrefix) }

// Bech32 returns the address in bech32 with the given prefix. It panics on an
// invalid prefix; use ValidatePrefix on prefixes from users.
func (a Address) Bech32(prefix string) string {
	s, err := bech32Encode(prefix, a[:])
	if err != nil {
		panic(fmt.Sprintf("wallet: address prefix %q: %v", prefix, err))
	}
	return s
}

// ValidatePrefix reports whether prefix can be used as a bech32 address
// prefix: 1 to 83 printable lower-case ASCII characters.
func ValidatePrefix(prefix string) error {
	if err := validateHRP(prefix); err != nil {
		return fmt.Errorf("%w: prefix %q: %v", ErrInvalidAddress, prefix, err)
	}
	return nil
}

// ParseAddress decodes a bech32 address and returns it with its prefix.
func ParseAddress(s string) (Address, string, error) {
	var a Address
	hrp, data, err := bech32Decode(s)
	if err != nil {
		return a, "", fmt.Errorf("%w %q: %v", ErrInvalidAddress, s, err)
	}
	if len(data) != AddressSize {
		return a, "", fmt.Errorf("%w %q: %d bytes, want %d", ErrInvalidAddress, s, len(data), AddressSize)
	}
	copy(a[:], data)
	return a, hrp, nil
}

// MarshalText encodes the address in bech32 with DefaultAddressPrefix, so
// addresses read well in JSON.
func (a Address) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText decodes a bech32 address of any prefix.
func (a *Address) UnmarshalText(b []byte) error {
	v, _, err := ParseAddress(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

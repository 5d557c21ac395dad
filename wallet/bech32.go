package wallet

import (
	"fmt"
	"strings"
)

// This file implements bech32 (BIP 173), the encoding of account addresses.
// Cosmos SDK addresses use the original bech32 checksum constant (1), not
// bech32m.

const bech32Charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

var bech32Generator = [5]uint32{0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3}

func bech32Polymod(values []byte) uint32 {
	chk := uint32(1)
	for _, v := range values {
		top := chk >> 25
		chk = (chk&0x1ffffff)<<5 ^ uint32(v)
		for i := range 5 {
			if (top>>i)&1 == 1 {
				chk ^= bech32Generator[i]
			}
		}
	}
	return chk
}

func bech32HRPExpand(hrp string) []byte {
	out := make([]byte, 0, len(hrp)*2+1)
	for i := 0; i < len(hrp); i++ {
		out = append(out, hrp[i]>>5)
	}
	out = append(out, 0)
	for i := 0; i < len(hrp); i++ {
		out = append(out, hrp[i]&31)
	}
	return out
}

// convertBits regroups a byte slice from fromBits-bit groups to toBits-bit
// groups. With pad, a trailing partial group is zero-padded; without, any
// non-zero padding is an error.
func convertBits(data []byte, fromBits, toBits uint, pad bool) ([]byte, error) {
	var acc uint32
	var bits uint
	maxv := uint32(1)<<toBits - 1
	out := make([]byte, 0, len(data)*int(fromBits)/int(toBits)+1)
	for _, b := range data {
		if uint32(b)>>fromBits != 0 {
			return nil, fmt.Errorf("value %d does not fit in %d bits", b, fromBits)
		}
		acc = acc<<fromBits | uint32(b)
		bits += fromBits
		for bits >= toBits {
			bits -= toBits
			out = append(out, byte(acc>>bits&maxv))
		}
	}
	if pad {
		if bits > 0 {
			out = append(out, byte(acc<<(toBits-bits)&maxv))
		}
	} else if bits >= fromBits || acc<<(toBits-bits)&maxv != 0 {
		return nil, fmt.Errorf("invalid padding")
	}
	return out, nil
}

// bech32Encode encodes data (8-bit bytes) under the human-readable prefix.
func bech32Encode(hrp string, data []byte) (string, error) {
	if err := validateHRP(hrp); err != nil {
		return "", err
	}
	five, err := convertBits(data, 8, 5, true)
	if err != nil {
		return "", err
	}
	values := append(bech32HRPExpand(hrp), five...)
	values = append(values, 0, 0, 0, 0, 0, 0)
	mod := bech32Polymod(values) ^ 1
	var sb strings.Builder
	sb.Grow(len(hrp) + 1 + len(five) + 6)
	sb.WriteString(hrp)
	sb.WriteByte('1')
	for _, v := range five {
		sb.WriteByte(bech32Charset[v])
	}
	for i := range 6 {
		sb.WriteByte(bech32Charset[(mod>>(5*(5-i)))&31])
	}
	return sb.String(), nil
}

// bech32Decode decodes a bech32 string into its prefix and 8-bit data.
func bech32Decode(s string) (hrp string, data []byte, err error) {
	if len(s) > 90 {
		return "", nil, fmt.Errorf("longer than 90 characters")
	}
	if strings.ToLower(s) != s && strings.ToUpper(s) != s {
		return "", nil, fmt.Errorf("mixed case")
	}
	s = strings.ToLower(s)
	sep := strings.LastIndexByte(s, '1')
	if sep < 1 || sep+7 > len(s) {
		return "", nil, fmt.Errorf("missing separator or checksum")
	}
	hrp = s[:sep]
	if err := validateHRP(hrp); err != nil {
		return "", nil, err
	}
	values := make([]byte, 0, len(s)-sep-1)
	for i := sep + 1; i < len(s); i++ {
		idx := strings.IndexByte(bech32Charset, s[i])
		if idx < 0 {
			return "", nil, fmt.Errorf("invalid character %q", s[i])
		}
		values = append(values, byte(idx))
	}
	if bech32Polymod(append(bech32HRPExpand(hrp), values...)) != 1 {
		return "", nil, fmt.Errorf("checksum mismatch")
	}
	data, err = convertBits(values[:len(values)-6], 5, 8, false)
	if err != nil {
		return "", nil, err
	}
	return hrp, data, nil
}

func validateHRP(hrp string) error {
	if len(hrp) < 1 || len(hrp) > 83 {
		return fmt.Errorf("prefix must be 1 to 83 characters")
	}
	for i := 0; i < len(hrp); i++ {
		if hrp[i] < 33 || hrp[i] > 126 {
			return fmt.Errorf("prefix has invalid character %q", hrp[i])
		}
		if hrp[i] >= 'A' && hrp[i] <= 'Z' {
			return fmt.Errorf("prefix must be lower case")
		}
	}
	return nil
}

package aegis

import "unsafe"

// checkOverlap panics where crypto/cipher's AES-GCM does: if out, the
// bytes Seal or Open appends to dst, shares memory with in (the plaintext,
// or the whole ciphertext with its tag) other than exactly in place, or
// shares any memory with the additional data.
func checkOverlap(out, in, ad []byte) {
	if inexactOverlap(out, in) {
		panic("aegis: invalid buffer overlap of output and input")
	}
	if anyOverlap(out, ad) {
		panic("aegis: invalid buffer overlap of output and additional data")
	}
}

// anyOverlap reports whether x and y share memory at any (not necessarily
// corresponding) index. The memory beyond the slices' lengths is ignored.
// (crypto/internal/fips140/alias.AnyOverlap.)
func anyOverlap(x, y []byte) bool {
	return len(x) > 0 && len(y) > 0 &&
		uintptr(unsafe.Pointer(&x[0])) <= uintptr(unsafe.Pointer(&y[len(y)-1])) &&
		uintptr(unsafe.Pointer(&y[0])) <= uintptr(unsafe.Pointer(&x[len(x)-1]))
}

// inexactOverlap reports whether x and y share memory at any
// non-corresponding index: in place (x and y starting together) is
// allowed. (crypto/internal/fips140/alias.InexactOverlap.)
func inexactOverlap(x, y []byte) bool {
	if len(x) == 0 || len(y) == 0 || &x[0] == &y[0] {
		return false
	}
	return anyOverlap(x, y)
}

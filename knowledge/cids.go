package knowledge

import (
	"bytes"
	"crypto/sha256"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// CodecObject is the multicodec of object envelopes: protobuf (0x50).
// Bodies use raw (0x55) leaves and dag-pb (0x70) UnixFS nodes, as IPFS does.
const CodecObject = 0x50

// ParseCID parses a CID in any multibase (or a CIDv0) and checks that the
// library can address it.
func ParseCID(s string) (cid.Cid, error) {
	c, err := cid.Decode(s)
	if err != nil {
		return cid.Undef, fmt.Errorf("%w: %q: %v", ErrBadCID, s, err)
	}
	if err := checkCID(c); err != nil {
		return cid.Undef, err
	}
	return c, nil
}

// castCID decodes a binary CID from the wire and checks it.
func castCID(b []byte) (cid.Cid, error) {
	n, c, err := cid.CidFromBytes(b)
	if err != nil {
		return cid.Undef, fmt.Errorf("%w: %v", ErrBadCID, err)
	}
	if n != len(b) {
		return cid.Undef, fmt.Errorf("%w: %d trailing bytes", ErrBadCID, len(b)-n)
	}
	return c, checkCID(c)
}

// checkCID accepts CIDv1 with SHA-256 and codec raw, dag-pb or object, and
// CIDv0 (dag-pb, SHA-256). Identity and other hashes are refused: a block
// must be verifiable against its CID.
func checkCID(c cid.Cid) error {
	if !c.Defined() {
		return fmt.Errorf("%w: undefined", ErrBadCID)
	}
	p := c.Prefix()
	if p.MhType != multihash.SHA2_256 || p.MhLength != sha256.Size {
		return fmt.Errorf("%w: %s: hash must be sha2-256", ErrBadCID, c)
	}
	switch {
	case p.Version == 0:
	case p.Version == 1 && (p.Codec == cid.Raw || p.Codec == cid.DagProtobuf || p.Codec == CodecObject):
	default:
		return fmt.Errorf("%w: %s: codec 0x%x is not raw, dag-pb or knowledge object", ErrBadCID, c, p.Codec)
	}
	return nil
}

// isObject tells an object envelope's CID from a body's.
func isObject(c cid.Cid) bool { return c.Version() == 1 && c.Type() == CodecObject }

// sumCID returns the CIDv1 of data with codec.
func sumCID(codec uint64, data []byte) cid.Cid {
	return digestCID(codec, sha256.Sum256(data))
}

// digestCID is the CIDv1 of codec for data whose SHA-256 is d.
func digestCID(codec uint64, d [sha256.Size]byte) cid.Cid {
	mh, _ := multihash.Encode(d[:], multihash.SHA2_256)
	return cid.NewCidV1(codec, mh)
}

// verifyBlock checks that data hashes to c (which checkCID accepted).
func verifyBlock(c cid.Cid, data []byte) error {
	dec, err := multihash.Decode(c.Hash())
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBadCID, c, err)
	}
	d := sha256.Sum256(data)
	if !bytes.Equal(dec.Digest, d[:]) {
		return fmt.Errorf("%w: %d bytes do not hash to %s", ErrBadBlock, len(data), c)
	}
	return nil
}

package knowledge

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
	"google.golang.org/protobuf/proto"

	"github.com/cybertensor/cybertensor/knowledge/pb"
	"github.com/cybertensor/cybertensor/wallet"
)

// Limits of an object's header.
const (
	// MaxEnvelopeSize bounds an encoded object envelope.
	MaxEnvelopeSize = 16 << 10
	MaxTitleLen     = 256
	MaxTags         = 16
	MaxTagLen       = 64
	MaxMediaTypeLen = 128
	// MaxLinks bounds an object's links to other objects.
	MaxLinks = 64
)

// objectVersion is the only header version.
const objectVersion = 1

// signDomain prefixes the bytes an object signature covers.
const signDomain = "cybertensor-knowledge/1\x00"

// Meta is what a publisher says about a body.
type Meta struct {
	// MediaType of the body; empty means "application/octet-stream".
	MediaType string
	Title     string
	// Tags are lower-cased and trimmed; empty ones are dropped.
	Tags   []string
	Netuid uint16
	// Links name other objects (by object CID), so the library grows as a
	// graph.
	Links []cid.Cid
}

// Object is a verified knowledge object: a signed header naming a body.
type Object struct {
	// CID addresses the envelope (codec CodecObject).
	CID cid.Cid
	// Body is the UnixFS root (or raw leaf) of the body; Size its length.
	Body      cid.Cid
	Size      uint64
	MediaType string
	Title     string
	Tags      []string
	Netuid    uint16
	Links     []cid.Cid
	// Author is the publishing hotkey.
	Author *wallet.PublicKey
	Time   time.Time
	// Envelope is the encoded object (the block CID hashes).
	Envelope []byte
}

// AuthorAddress is the author hotkey's address.
func (o *Object) AuthorAddress() wallet.Address { return o.Author.Address() }

func normalizeTags(tags []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, t := range tags {
		t = strings.ToLower(strings.TrimSpace(t))
		if t != "" && !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}

// newObject signs a header for body with key.
func newObject(key *wallet.PrivateKey, m Meta, body cid.Cid, size uint64, at time.Time) (*Object, error) {
	if m.MediaType == "" {
		m.MediaType = "application/octet-stream"
	}
	h := &pb.Header{
		Version: objectVersion, Body: body.Bytes(), Size: size, MediaType: m.MediaType, Title: m.Title,
		Tags: normalizeTags(m.Tags), Netuid: uint32(m.Netuid), Author: key.PublicKey().Bytes(), TimestampMs: at.UnixMilli(),
	}
	for _, l := range m.Links {
		h.Links = append(h.Links, l.Bytes())
	}
	if err := checkHeader(h); err != nil {
		return nil, err
	}
	hb, err := proto.MarshalOptions{Deterministic: true}.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("knowledge: encoding the header: %w", err)
	}
	env, err := proto.MarshalOptions{Deterministic: true}.Marshal(&pb.Object{Header: hb, Signature: key.Sign(append([]byte(signDomain), hb...))})
	if err != nil {
		return nil, fmt.Errorf("knowledge: encoding the object: %w", err)
	}
	if len(env) > MaxEnvelopeSize {
		return nil, fmt.Errorf("%w: object envelope of %d bytes exceeds %d", ErrTooLarge, len(env), MaxEnvelopeSize)
	}
	return DecodeObject(env)
}

// checkHeader enforces the header limits.
func checkHeader(h *pb.Header) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadObject, fmt.Sprintf(format, args...))
	}
	switch {
	case h.Version != objectVersion:
		return bad("version %d, want %d", h.Version, objectVersion)
	case len(h.Title) > MaxTitleLen || !utf8.ValidString(h.Title):
		return bad("title must be valid UTF-8 of at most %d bytes", MaxTitleLen)
	case len(h.MediaType) > MaxMediaTypeLen || !utf8.ValidString(h.MediaType):
		return bad("media type must be valid UTF-8 of at most %d bytes", MaxMediaTypeLen)
	case len(h.Tags) > MaxTags:
		return bad("%d tags exceed %d", len(h.Tags), MaxTags)
	case len(h.Links) > MaxLinks:
		return bad("%d links exceed %d", len(h.Links), MaxLinks)
	case h.Netuid > 0xffff:
		return bad("netuid %d out of range", h.Netuid)
	}
	for _, t := range h.Tags {
		if t == "" || len(t) > MaxTagLen || !utf8.ValidString(t) {
			return bad("tag %q must be valid UTF-8 of 1 to %d bytes", t, MaxTagLen)
		}
	}
	return nil
}

// DecodeObject decodes an object envelope and verifies it: limits, the
// body and link CIDs, the author key and its signature. Every failure is
// ErrBadObject (or ErrTooLarge, ErrBadCID).
func DecodeObject(env []byte) (*Object, error) {
	if len(env) > MaxEnvelopeSize {
		return nil, fmt.Errorf("%w: object envelope of %d bytes exceeds %d", ErrTooLarge, len(env), MaxEnvelopeSize)
	}
	var o pb.Object
	if err := proto.Unmarshal(env, &o); err != nil {
		return nil, fmt.Errorf("%w: envelope: %v", ErrBadObject, err)
	}
	var h pb.Header
	if err := proto.Unmarshal(o.Header, &h); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrBadObject, err)
	}
	if err := checkHeader(&h); err != nil {
		return nil, err
	}
	body, err := castCID(h.Body)
	if err != nil || isObject(body) {
		return nil, fmt.Errorf("%w: body CID: %v", ErrBadObject, err)
	}
	digest := sha256.Sum256(env)
	author := verifiedObjects.get(digest)
	if author == nil {
		if author, err = wallet.PublicKeyFromBytes(h.Author); err != nil {
			return nil, fmt.Errorf("%w: author: %v", ErrBadObject, err)
		}
		if !author.Verify(append([]byte(signDomain), o.Header...), o.Signature) {
			return nil, fmt.Errorf("%w: the signature does not verify for author %s", ErrBadObject, author.Address())
		}
		verifiedObjects.put(digest, author)
	}
	obj := &Object{
		CID: digestCID(CodecObject, digest), Body: body, Size: h.Size, MediaType: h.MediaType, Title: h.Title,
		Tags: h.Tags, Netuid: uint16(h.Netuid), Author: author, Time: time.UnixMilli(h.TimestampMs).UTC(),
		Envelope: append([]byte(nil), env...),
	}
	for i, lb := range h.Links {
		l, err := castCID(lb)
		if err != nil {
			return nil, fmt.Errorf("%w: link %d: %v", ErrBadObject, i, err)
		}
		obj.Links = append(obj.Links, l)
	}
	return obj, nil
}

// verifiedObjects keeps the authors of the envelopes whose signatures
// verified lately, by the envelope's SHA-256: a neuron decodes the same
// envelope again and again (gossip's check of an announcement, then its
// subscriber, then every re-announcement and fetch), and each signature
// check is a secp256k1 verification in pure Go, with the author's key to
// decompress first; in a 256-neuron localnet they were 2% of the CPU. The
// digest covers the signature and the header it signs, so an envelope
// found here verified exactly as it is. Anyone can publish envelopes, so
// the cache is bounded, and emptied when full.
var verifiedObjects = envelopeCache{m: make(map[[sha256.Size]byte]*wallet.PublicKey)}

// maxVerifiedObjects bounds verifiedObjects (about 200 bytes an entry).
const maxVerifiedObjects = 4096

type envelopeCache struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]*wallet.PublicKey
}

func (c *envelopeCache) get(digest [sha256.Size]byte) *wallet.PublicKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[digest]
}

func (c *envelopeCache) put(digest [sha256.Size]byte, author *wallet.PublicKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxVerifiedObjects {
		clear(c.m)
	}
	c.m[digest] = author
}

func (c *envelopeCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

package knowledge

import (
	"context"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/proto"

	"github.com/cybertensor/cybertensor/knowledge/pb"
)

// Announcer publishes an encoded Announcement on subnet netuid's knowledge
// gossip topic (gossip.TopicName(chainID, netuid, gossip.Knowledge)). The
// gossip layer implements it; the library calls it once per Publish.
type Announcer interface {
	Announce(ctx context.Context, netuid uint16, data []byte) error
}

// CheckAnnouncement is the body check of subnet netuid's knowledge topic:
// nil for a well-formed announcement of a validly signed object of that
// subnet. Gossip rejects (and scores down) what it refuses.
func CheckAnnouncement(netuid uint16, data []byte) error {
	_, err := decodeAnnouncementOf(netuid, data)
	return err
}

// decodeAnnouncementOf decodes (verifying the object's signature once) an
// announcement that must be of an object of netuid.
func decodeAnnouncementOf(netuid uint16, data []byte) (*Announcement, error) {
	a, err := DecodeAnnouncement(data)
	if err != nil {
		return nil, err
	}
	if a.Object.Netuid != netuid {
		return nil, fmt.Errorf("%w: object of subnet %d announced on subnet %d", ErrBadMessage, a.Object.Netuid, netuid)
	}
	return a, nil
}

// Limits of announcements.
const (
	// MaxInlineBody bounds the body an announcement may carry: a body of
	// one raw block this small travels with its announcement (Body), so
	// the subnet's members have it without fetching it.
	MaxInlineBody = 1024
	// MaxAnnouncementSize bounds an encoded announcement.
	MaxAnnouncementSize = MaxEnvelopeSize + 1024 + MaxInlineBody
	// maxAnnouncedAddrs bounds the provider addresses in one.
	maxAnnouncedAddrs = 8
	maxAddrLen        = 256
)

// Announcement tells a subnet about a published object: the signed object
// itself (CID, title, tags, size, author, netuid, time) and where to fetch
// it.
type Announcement struct {
	Object   *Object
	Provider peer.AddrInfo
	// Body is the object's body when it is one raw block of at most
	// MaxInlineBody bytes (nil otherwise): in a subnet whose documents are
	// a sentence or two, every member fetching each one from its
	// publisher was the most work of a start-up (in a 256-neuron localnet,
	// 224 miners fetching 12 documents of ~100 bytes from 12 validators,
	// most of them timing out). Decoding checks it is the object's body.
	Body []byte
}

// Encode encodes the announcement.
func (a *Announcement) Encode() ([]byte, error) {
	m := &pb.Announcement{Object: a.Object.Envelope, Body: a.Body}
	if a.Provider.ID != "" {
		m.Provider = []byte(a.Provider.ID)
	}
	for _, addr := range a.Provider.Addrs {
		if len(m.Addrs) == maxAnnouncedAddrs {
			break
		}
		m.Addrs = append(m.Addrs, addr.Bytes())
	}
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("knowledge: encoding an announcement: %w", err)
	}
	if len(b) > MaxAnnouncementSize {
		return nil, fmt.Errorf("%w: announcement of %d bytes exceeds %d", ErrTooLarge, len(b), MaxAnnouncementSize)
	}
	return b, nil
}

// DecodeAnnouncement decodes an announcement from a peer and verifies the
// object in it (signature and limits). A gossip validator rejects what it
// refuses.
func DecodeAnnouncement(b []byte) (*Announcement, error) {
	if len(b) > MaxAnnouncementSize {
		return nil, fmt.Errorf("%w: announcement of %d bytes exceeds %d", ErrBadMessage, len(b), MaxAnnouncementSize)
	}
	var m pb.Announcement
	if err := proto.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: announcement: %v", ErrBadMessage, err)
	}
	obj, err := DecodeObject(m.Object)
	if err != nil {
		return nil, fmt.Errorf("%w: announced object: %w", ErrBadMessage, err)
	}
	a := &Announcement{Object: obj}
	if len(m.Body) > 0 {
		if err := checkInlineBody(obj, m.Body); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadMessage, err)
		}
		a.Body = m.Body
	}
	if len(m.Provider) > 0 {
		id, err := peer.IDFromBytes(m.Provider)
		if err != nil {
			return nil, fmt.Errorf("%w: provider: %v", ErrBadMessage, err)
		}
		a.Provider.ID = id
	}
	if len(m.Addrs) > maxAnnouncedAddrs {
		return nil, fmt.Errorf("%w: %d provider addresses exceed %d", ErrBadMessage, len(m.Addrs), maxAnnouncedAddrs)
	}
	for i, ab := range m.Addrs {
		if len(ab) > maxAddrLen {
			return nil, fmt.Errorf("%w: provider address %d too long", ErrBadMessage, i)
		}
		addr, err := ma.NewMultiaddrBytes(ab)
		if err != nil {
			return nil, fmt.Errorf("%w: provider address %d: %v", ErrBadMessage, i, err)
		}
		a.Provider.Addrs = append(a.Provider.Addrs, addr)
	}
	if a.Provider.ID == "" && len(a.Provider.Addrs) > 0 {
		return nil, fmt.Errorf("%w: provider addresses without a provider", ErrBadMessage)
	}
	return a, nil
}

// Ingest takes an announcement received on subnet netuid's topic from
// peer from: it is verified, kept in the remote index (bounded by
// MaxRemote) and becomes searchable, so the object can be fetched on
// demand. An announcement without a provider names from. An error means
// the gossip layer should reject the message.
func (l *Library) Ingest(netuid uint16, from peer.ID, data []byte) (*Announcement, error) {
	if err := l.alive(); err != nil {
		return nil, err
	}
	a, err := decodeAnnouncementOf(netuid, data)
	if err != nil {
		return nil, err
	}
	if a.Provider.ID == "" && from != "" {
		a.Provider.ID = from
		if data, err = a.Encode(); err != nil {
			return nil, err
		}
	}
	if l.index.isLocal(a.Object.CID) {
		return a, nil
	}
	if err := l.store.putRemote(a.Object.CID, data, time.Now(), l.cfg.MaxRemote); err != nil {
		return nil, fmt.Errorf("knowledge: keeping an announcement: %w", err)
	}
	l.index.add(a.Object, false, "")
	return a, nil
}

// inlineBody reports whether obj's body may travel with its announcement:
// one raw block (its CID is the SHA-256 of the bytes) of at most
// MaxInlineBody bytes.
func inlineBody(obj *Object) bool {
	return obj.Size > 0 && obj.Size <= MaxInlineBody && obj.Body.Prefix().Codec == cid.Raw
}

// checkInlineBody checks that body, carried by obj's announcement, is obj's
// body.
func checkInlineBody(obj *Object, body []byte) error {
	switch {
	case !inlineBody(obj):
		return fmt.Errorf("a body of %d bytes with an object whose body (%s, %d bytes) cannot travel with it", len(body), obj.Body, obj.Size)
	case uint64(len(body)) != obj.Size:
		return fmt.Errorf("a body of %d bytes with an object of %d", len(body), obj.Size)
	}
	if err := verifyBlock(obj.Body, body); err != nil {
		return fmt.Errorf("the body carried: %w", err)
	}
	return nil
}

package dht

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p-kad-dht/records"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"

	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/wallet"
)

// ProtocolPrefix makes the DHT protocol /cybertensor/kad/1.0.0, a network
// of its own apart from IPFS's.
const ProtocolPrefix = "/cybertensor"

// RecordNamespace is the DHT key namespace of neuron records:
// /ctneuron/<chain-id>/<netuid>/<peer-id>.
const RecordNamespace = "ctneuron"

// Registry answers who is registered on a subnet; the chain view
// implements it.
type Registry interface {
	// Lookup returns the uid of hotkey on netuid, ok=false if it holds none.
	Lookup(ctx context.Context, netuid uint16, hotkey wallet.Address) (uid uint16, ok bool, err error)
}

// DHT is the neuron's Kademlia DHT in server mode, with subnet membership
// and signed neuron records.
type DHT struct {
	kad *kaddht.IpfsDHT
	h   host.Host
	key *wallet.PrivateKey
	reg Registry
	cfg Config
	log *slog.Logger

	// providers holds the provider records kept (kad-dht's provider
	// manager writes to it); subnetKeys maps subnet keys to netuids.
	providers  *providerStore
	subnetKeys map[string]uint16
	provides   *provideLimiter // unregistered peers' provider records

	joinedMu sync.Mutex
	joined   map[uint16]bool // subnets this neuron announced membership of

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// New starts the DHT on h. key must be h's identity (the hotkey).
func New(h host.Host, key *wallet.PrivateKey, reg Registry, cfg Config) (*DHT, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if key.PublicKey().PeerID() != h.ID() {
		return nil, errors.New("dht: key is not the host's identity")
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &DHT{h: h, key: key, reg: reg, cfg: cfg, joined: map[uint16]bool{}, log: cfg.Logger.With("component", "dht"),
		subnetKeys: sharedSubnetKeys(cfg.ChainID), provides: newProvideLimiter(cfg.ProvideRate), ctx: ctx, cancel: cancel}
	d.providers = newProviderStore(h.ID(), cfg.Providers, cfg.ProviderTTL, cfg.MembershipTTL, func(k string) bool {
		_, ok := d.subnetKeys[k]
		return ok
	})
	opts := []kaddht.Option{
		kaddht.ProtocolPrefix(ProtocolPrefix),
		// Neurons serve the DHT: auto mode would stay a client on the
		// loopback and private addresses of local and lab networks.
		kaddht.Mode(kaddht.ModeServer),
		// Neuron records only: setting the validator turns off kad-dht's
		// default /pk/ and /ipns/ namespaces, which we do not use.
		kaddht.Validator(record.NamespacedValidator{RecordNamespace: &recordValidator{chainID: cfg.ChainID, reg: reg}}),
		kaddht.MaxRecordAge(cfg.RecordTTL),
		kaddht.ValueGCInterval(cfg.RecordTTL),
		// Provider records in our bounded store, read through (the
		// manager's cache would keep what the store evicted), expired by
		// the store; screen decides which are kept.
		kaddht.ProviderDatastore(d.providers),
		kaddht.ProviderManagerOpts(
			records.Cache(noCache{}),
			records.CleanupInterval(0),
			records.ProvideValidity(cfg.ProviderTTL),
			records.ProviderAddrTTL(cfg.ProviderTTL),
		),
		kaddht.OnRequestHook(d.screen),
	}
	// kad-dht's automatic refresh walks every bucket at start, twice
	// (forced, then again once the first ends), whatever the searches
	// have already walked: in a 64-neuron localnet, a fifth of the CPU.
	// refreshLoop refreshes only what searches left stale.
	opts = append(opts, kaddht.DisableAutoRefresh(), kaddht.RoutingTableRefreshPeriod(cfg.RoutingRefreshEvery))
	if len(cfg.Bootstrap) > 0 {
		opts = append(opts, kaddht.BootstrapPeers(cfg.Bootstrap...))
	}
	kad, err := kaddht.New(h, opts...)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("dht: %w", err)
	}
	d.kad = kad
	d.wg.Add(1)
	go d.refreshLoop()
	return d, nil
}

// refreshLoop keeps the routing table useful at the cost its state calls
// for, until Close. About every lowCheckEvery it looks at the table's size:
// a neuron whose table holds lowPeers or fewer (one that knows only its
// bootstrap peers), and is connected to no more DHT servers than that
// (joinWalkNeeded), walks toward its own key, Kademlia's join, which fills
// its table and makes it known to the peers closest to it; while walks
// leave it low, it waits longer after each (joinBackoff). About every
// RoutingRefreshEvery it asks kad-dht to refresh the buckets that no search
// used within that period. Both periods are drawn from 75 to 125% of
// themselves, so that neurons started together do not walk together.
//
// Nothing walks at start otherwise: the table fills from the connections
// the neuron makes anyway (kad-dht adds every DHT server it connects to).
// A join walk on every neuron at start, and kad-dht's sweeps of every
// bucket, were thousands of dials and TLS handshakes at the same moment in
// a 128-neuron localnet, holding the validators' first 20 s of queries to
// their 2 s deadline.
func (d *DHT) refreshLoop() {
	defer d.wg.Done()
	jitter := func(every time.Duration) time.Duration { return every*3/4 + rand.N(every/2+1) }
	lowWait := lowCheckEvery
	lowCheck := time.NewTimer(jitter(lowWait))
	servers := 0 // connected DHT servers at the last look
	defer lowCheck.Stop()
	refresh := time.NewTimer(jitter(d.cfg.RoutingRefreshEvery))
	defer refresh.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-lowCheck.C:
			was := servers
			servers = d.connectedServers()
			if !joinWalkNeeded(d.kad.RoutingTable().Size(), servers, was) {
				lowWait = lowCheckEvery
				lowCheck.Reset(jitter(lowWait))
				continue
			}
			if _, err := d.kad.GetClosestPeers(d.ctx, string(d.h.ID())); err != nil && d.ctx.Err() == nil {
				d.log.Debug("walking toward this neuron's key", "err", err)
			}
			lowWait = joinBackoff(lowWait, d.kad.RoutingTable().Size() <= lowPeers, d.cfg.RoutingRefreshEvery)
			lowCheck.Reset(jitter(lowWait))
		case <-refresh.C:
			refresh.Reset(jitter(d.cfg.RoutingRefreshEvery))
			select {
			case err := <-d.kad.RefreshRoutingTable():
				if err != nil && d.ctx.Err() == nil {
					d.log.Debug("refreshing the routing table", "err", err)
				}
			case <-d.ctx.Done():
				return
			}
		}
	}
}

// joinWalkNeeded reports whether a neuron whose routing table holds table
// peers, connected to servers peers serving the DHT (was at its last look,
// lowCheckEvery before), walks toward its own key: when the table is low
// (lowPeers or fewer, but not empty: an empty table has no one to ask) and
// is not filling from the connections, neither from many of them nor from
// more than at the last look. A miner of a large subnet starts with a low
// table and gains a connection with each validator that reaches it; in a
// 256-neuron localnet, walking at the first look was ~190 walks within 5 s
// of the start, ~2,000 dials to peers found on the way, that held up the
// validators' own.
func joinWalkNeeded(table, servers, was int) bool {
	return table > 0 && table <= lowPeers && servers <= lowPeers && servers <= was
}

// connectedServers counts the connected peers that serve the DHT. kad-dht
// adds each to the routing table once it answers a request, so a table
// that is low while more than lowPeers of them are connected is filling
// (its checks queued on a busy machine), and a join walk, which dials
// about 40 peers, would only add to the load.
func (d *DHT) connectedServers() int {
	n := 0
	for _, p := range d.h.Network().Peers() {
		if ok, err := d.h.Peerstore().SupportsProtocols(p, KadProtocol); err == nil && len(ok) > 0 {
			n++
		}
	}
	return n
}

// KadProtocol is the DHT's protocol (kad-dht's, under ProtocolPrefix).
const KadProtocol = ProtocolPrefix + "/kad/1.0.0"

// joinBackoff is how long refreshLoop waits to look again at a routing
// table that was low and walked, after waiting last: lowCheckEvery if the
// walk filled it, else twice last, at most most. In a network too busy for
// walks to fill tables (each new peer is checked with a request before
// kad-dht adds it), a walk every lowCheckEvery only adds to the load that
// made it fail: a 256-neuron localnet on two cores had a hundred neurons
// walking at once, a thousand dials in flight, while its validators
// waited to connect to their miners.
func joinBackoff(last time.Duration, stillLow bool, most time.Duration) time.Duration {
	if !stillLow {
		return lowCheckEvery
	}
	return max(lowCheckEvery, min(2*last, most))
}

// A routing table of lowPeers or fewer (kad-dht's own mark for a table
// that needs filling) is looked at every lowCheckEvery.
const (
	lowPeers      = 10
	lowCheckEvery = 10 * time.Second
)

// Close stops the DHT and its refresh loops. It is safe to call twice.
func (d *DHT) Close() error {
	var err error
	d.once.Do(func() {
		d.cancel()
		d.wg.Wait()
		err = d.kad.Close()
	})
	return err
}

// RoutingTableSize is the number of peers in the routing table.
func (d *DHT) RoutingTableSize() int { return d.kad.RoutingTable().Size() }

// SubnetKey is the content ID a subnet's members provide: a CIDv1 (raw) of
// the SHA-256 of "cybertensor-subnet/<chain-id>/<netuid>".
func SubnetKey(chainID string, netuid uint16) cid.Cid {
	h, _ := multihash.Sum([]byte(fmt.Sprintf("cybertensor-subnet/%s/%d", chainID, netuid)), multihash.SHA2_256, -1)
	return cid.NewCidV1(cid.Raw, h)
}

// Join announces membership of netuid: it provides the subnet key and
// publishes the neuron's signed record, now and every RefreshEvery, until
// Close.
func (d *DHT) Join(ctx context.Context, netuid uint16, uid uint16, protocols []string) error {
	if err := d.announce(ctx, netuid, uid, protocols); err != nil {
		return err
	}
	d.joinedMu.Lock()
	d.joined[netuid] = true
	d.joinedMu.Unlock()
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		t := time.NewTicker(d.cfg.RefreshEvery)
		defer t.Stop()
		for {
			select {
			case <-d.ctx.Done():
				return
			case <-t.C:
				if err := d.announce(d.ctx, netuid, uid, protocols); err != nil {
					d.log.Warn("refreshing membership", "netuid", netuid, "err", err)
				}
			}
		}
	}()
	return nil
}

func (d *DHT) announce(ctx context.Context, netuid, uid uint16, protocols []string) error {
	if err := d.kad.Provide(ctx, SubnetKey(d.cfg.ChainID, netuid), true); err != nil {
		return fmt.Errorf("dht: providing subnet %d: %w", netuid, err)
	}
	rec := Record{
		PeerID: d.h.ID().String(), Hotkey: d.key.PublicKey().Address().String(), Netuid: netuid, UID: uid,
		Protocols: protocols, Expires: time.Now().Add(d.cfg.RecordTTL).Unix(),
	}
	for _, a := range d.h.Addrs() {
		rec.Addrs = append(rec.Addrs, a.String())
	}
	value, err := rec.Sign(d.key)
	if err != nil {
		return err
	}
	if err := d.kad.PutValue(ctx, RecordKey(d.cfg.ChainID, netuid, d.h.ID()), value); err != nil {
		return fmt.Errorf("dht: publishing the neuron record: %w", err)
	}
	return nil
}

// Members finds the peers providing netuid's key, until ctx ends or the
// search completes.
//
// On a subnet this neuron has joined, Members also keeps what it finds: each
// provider whose hotkey the Registry says is registered on netuid (and
// whose addresses are known) becomes a provider record in this neuron's own
// store. A newcomer asking any member for the subnet key's providers then
// gets the whole subnet in one hop, instead of walking to the few peers
// closest to the key. The answer is the standard GET_PROVIDERS response, so
// other implementations need nothing new. Kept records last as long as
// any subnet key's provider record (MembershipTTL, an hour by default,
// from the last time a search found them); a neuron that leaves the
// subnet's registry is no longer kept, and one that stays registered but
// goes offline is listed as the chain lists its axon: callers learn who is
// alive by dialing.
func (d *DHT) Members(ctx context.Context, netuid uint16) []peer.AddrInfo {
	key := SubnetKey(d.cfg.ChainID, netuid)
	d.waitRoutable(ctx)
	var out []peer.AddrInfo
	for p := range d.kad.FindProvidersAsync(ctx, key, 0) {
		out = append(out, p)
	}
	d.joinedMu.Lock()
	joined := d.joined[netuid]
	d.joinedMu.Unlock()
	if joined {
		d.keepMembers(ctx, netuid, key, out)
	}
	return out
}

// waitRoutable returns once the routing table holds a peer, when the host
// has no connection that could become one, after routableWait, or when ctx
// ends. A DHT started a moment ago has an empty table until the peers it is
// connected to answer a first request, and a search started before that
// finds nothing.
func (d *DHT) waitRoutable(ctx context.Context) {
	if d.kad.RoutingTable().Size() > 0 {
		return
	}
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	giveUp := time.After(routableWait)
	for d.kad.RoutingTable().Size() == 0 && len(d.h.Network().Conns()) > 0 {
		select {
		case <-ctx.Done():
			return
		case <-d.ctx.Done():
			return
		case <-giveUp:
			return
		case <-t.C:
		}
	}
}

// routableWait bounds waitRoutable: long enough for a connected peer's
// first answer on a loaded machine, short enough that a search on a
// neuron whose connections are not DHT servers still runs soon.
const routableWait = 5 * time.Second

// maxKeptMembers bounds the provider records Members keeps for one subnet
// per search (a subnet holds at most 4,096 uids).
const maxKeptMembers = 4096

// keepMembers stores the registered members among found as provider records
// of key in this neuron's provider store.
func (d *DHT) keepMembers(ctx context.Context, netuid uint16, key cid.Cid, found []peer.AddrInfo) {
	store := d.kad.ProviderStore()
	if store == nil || d.reg == nil {
		return
	}
	kept := 0
	for _, p := range found {
		if kept == maxKeptMembers || ctx.Err() != nil {
			return
		}
		if p.ID == d.h.ID() || len(p.Addrs) == 0 {
			continue
		}
		hotkey, err := protocol.HotkeyAddress(p.ID)
		if err != nil {
			continue
		}
		if _, ok, err := d.reg.Lookup(ctx, netuid, hotkey); err != nil || !ok {
			continue
		}
		d.providers.add(string(key.Hash()), p.ID, registered)
		if err := store.AddProvider(ctx, key.Hash(), p); err != nil {
			d.log.Debug("keeping a subnet member", "netuid", netuid, "peer", p.ID, "err", err)
			return
		}
		kept++
	}
}

// LookupRecord fetches and checks a neuron's record.
func (d *DHT) LookupRecord(ctx context.Context, netuid uint16, id peer.ID) (*Record, error) {
	value, err := d.kad.GetValue(ctx, RecordKey(d.cfg.ChainID, netuid, id))
	if err != nil {
		return nil, fmt.Errorf("dht: record of %s: %w", id, err)
	}
	return DecodeRecord(value)
}

// RecordKey is the DHT key of a neuron's record.
func RecordKey(chainID string, netuid uint16, id peer.ID) string {
	return fmt.Sprintf("/%s/%s/%d/%s", RecordNamespace, chainID, netuid, id)
}

// Record is a neuron's signed self-description.
type Record struct {
	PeerID    string   `json:"peer_id"`
	Hotkey    string   `json:"hotkey"`
	Netuid    uint16   `json:"netuid"`
	UID       uint16   `json:"uid"`
	Addrs     []string `json:"addrs"`
	Protocols []string `json:"protocols,omitempty"`
	Capacity  string   `json:"capacity,omitempty"`
	Expires   int64    `json:"expires"`
	// Signature is the hotkey's over "cybertensor-record/1\0" and the
	// record's JSON without the signature.
	Signature []byte `json:"signature,omitempty"`
}

const (
	recordDomain  = "cybertensor-record/1\x00"
	maxRecordSize = 8 << 10
)

func (r Record) signBytes() []byte {
	r.Signature = nil
	b, _ := json.Marshal(r)
	return append([]byte(recordDomain), b...)
}

// Sign signs the record with the hotkey and encodes it.
func (r Record) Sign(key *wallet.PrivateKey) ([]byte, error) {
	r.Signature = key.Sign(r.signBytes())
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	if len(b) > maxRecordSize {
		return nil, fmt.Errorf("dht: record of %d bytes exceeds %d", len(b), maxRecordSize)
	}
	return b, nil
}

// ErrBadRecord wraps every reason a record is refused.
var ErrBadRecord = errors.New("dht: invalid neuron record")

// DecodeRecord parses a record and checks its signature and that its
// hotkey is the one inside its peer ID. Expiry and registration are the
// validator's checks.
func DecodeRecord(b []byte) (*Record, error) {
	if len(b) > maxRecordSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadRecord, len(b))
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	id, err := peer.Decode(r.PeerID)
	if err != nil {
		return nil, fmt.Errorf("%w: peer ID: %v", ErrBadRecord, err)
	}
	addr, err := protocol.HotkeyAddress(id)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	if addr.String() != r.Hotkey {
		return nil, fmt.Errorf("%w: hotkey %s is not the peer's %s", ErrBadRecord, r.Hotkey, addr)
	}
	pk, _ := id.ExtractPublicKey()
	raw, _ := pk.Raw()
	pub, err := wallet.PublicKeyFromBytes(raw)
	if err != nil || !pub.Verify(r.signBytes(), r.Signature) {
		return nil, fmt.Errorf("%w: signature does not verify", ErrBadRecord)
	}
	return &r, nil
}

// recordValidator is the DHT's record validator for the ctneuron
// namespace: signature, key/content agreement, expiry, and the uid claim
// against the chain.
type recordValidator struct {
	chainID string
	reg     Registry
}

func (v *recordValidator) Validate(key string, value []byte) error {
	r, err := DecodeRecord(value)
	if err != nil {
		return err
	}
	parts := strings.Split(strings.TrimPrefix(key, "/"), "/")
	if len(parts) != 4 || parts[0] != RecordNamespace || parts[1] != v.chainID || parts[2] != strconv.Itoa(int(r.Netuid)) || parts[3] != r.PeerID {
		return fmt.Errorf("%w: key %q does not match the record", ErrBadRecord, key)
	}
	if time.Now().Unix() > r.Expires {
		return fmt.Errorf("%w: expired", ErrBadRecord)
	}
	hot, _, err := wallet.ParseAddress(r.Hotkey)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	uid, ok, err := v.reg.Lookup(ctx, r.Netuid, hot)
	if err != nil {
		return fmt.Errorf("dht: checking the record's registration: %w", err)
	}
	if !ok || uid != r.UID {
		return fmt.Errorf("%w: hotkey %s does not hold uid %d on subnet %d", ErrBadRecord, r.Hotkey, r.UID, r.Netuid)
	}
	return nil
}

// Select prefers the record that expires last.
func (v *recordValidator) Select(_ string, values [][]byte) (int, error) {
	best, bestExp := -1, int64(-1)
	for i, b := range values {
		var r Record
		if json.Unmarshal(b, &r) == nil && r.Expires > bestExp {
			best, bestExp = i, r.Expires
		}
	}
	if best < 0 {
		return 0, ErrBadRecord
	}
	return best, nil
}

package gateway

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/cybertensor/cybertensor/node"
	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/subnet"
	"github.com/cybertensor/cybertensor/wallet"
)

func testKey(i int) *wallet.PrivateKey {
	seed := sha256.Sum256([]byte(fmt.Sprintf("gateway test key %d", i)))
	k, err := wallet.PrivateKeyFromBytes(seed[:])
	if err != nil {
		panic(err)
	}
	return k
}

// anyCaller registers every caller.
type anyCaller struct{}

func (anyCaller) Caller(context.Context, uint16, peer.ID) (protocol.Caller, error) {
	return protocol.Caller{Registered: true, Stake: 1000}, nil
}

// staticMetagraph serves a fixed list of miners.
type staticMetagraph struct {
	mu     sync.Mutex
	miners map[uint16][]Miner
}

func (m *staticMetagraph) Miners(_ context.Context, netuid uint16) ([]Miner, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.miners[netuid], nil
}

// memAuth knows a fixed set of secrets.
type memAuth map[string]string

func (a memAuth) Authenticate(secret string) (string, bool) {
	id, ok := a[secret]
	return id, ok
}

// memLimiter refuses while refuse is set, asking to retry after retry.
type memLimiter struct {
	mu     sync.Mutex
	refuse bool
	retry  time.Duration
	calls  int
	tokens int64
}

func (l *memLimiter) Allow(string, int64, time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	if l.refuse {
		return false, l.retry
	}
	return true, 0
}

func (l *memLimiter) ChargeTokens(_ string, n int64, _ time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tokens += n
}

// memRecorder keeps usage in memory.
type memRecorder struct {
	mu   sync.Mutex
	rows []Usage
	// added is signalled after each Record.
	added chan struct{}
}

func (r *memRecorder) Record(u Usage) error {
	r.mu.Lock()
	r.rows = append(r.rows, u)
	r.mu.Unlock()
	select {
	case r.added <- struct{}{}:
	default:
	}
	return nil
}

func (r *memRecorder) all() []Usage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Usage(nil), r.rows...)
}

// waitRecords waits until n usage rows are recorded.
func (r *memRecorder) waitRecords(t *testing.T, n int) []Usage {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if rows := r.all(); len(rows) >= n {
			return rows
		}
		select {
		case <-r.added:
		case <-deadline:
			t.Fatalf("%d usage rows recorded, want %d", len(r.all()), n)
		}
	}
}

// fakeMiner is a miner host whose text.chat and text.embed handlers the
// test controls.
type fakeMiner struct {
	h      host.Host
	key    *wallet.PrivateKey
	srv    *protocol.Server
	served sync.WaitGroup
	mu     sync.Mutex
	mode   string
	calls  int
	// tokens are what a chat answer streams, one chunk each.
	tokens []string
	// ended receives the error a handler ended with.
	ended chan error
	// wrote is signalled after each chunk written.
	wrote chan struct{}
	// handler, if set, answers text.chat instead of the modes.
	handler protocol.HandlerFunc
}

func (f *fakeMiner) setHandler(h protocol.HandlerFunc) {
	f.mu.Lock()
	f.handler = h
	f.mu.Unlock()
}

func (f *fakeMiner) setMode(m string) {
	f.mu.Lock()
	f.mode = m
	f.mu.Unlock()
}

func (f *fakeMiner) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// Modes of a fake miner's chat handler.
const (
	modeOK         = ""           // stream the tokens
	modeFailBefore = "failbefore" // refuse with INTERNAL before any chunk
	modeFailAfter  = "failafter"  // two chunks, then INTERNAL
	modeSlow       = "slow"       // nothing until the deadline
	modeEndless    = "endless"    // a chunk every few ms until writing fails
)

func (f *fakeMiner) chat(ctx context.Context, req *protocol.Request, w protocol.ResponseWriter) error {
	f.mu.Lock()
	f.calls++
	mode, tokens, h := f.mode, f.tokens, f.handler
	f.mu.Unlock()
	if h != nil {
		return h(ctx, req, w)
	}
	if _, err := subnet.DecodeChatRequest(req.Body); err != nil {
		return protocol.Errorf(protocol.StatusBadRequest, "%v", err)
	}
	switch mode {
	case modeFailBefore:
		return errors.New("the model is down")
	case modeSlow:
		<-ctx.Done()
		return ctx.Err()
	case modeEndless:
		for i := 0; ; i++ {
			if err := w.Write([]byte(fmt.Sprintf("t%d ", i))); err != nil {
				f.ended <- err
				return err
			}
			select {
			case f.wrote <- struct{}{}:
			default:
			}
			select {
			case <-ctx.Done():
				f.ended <- ctx.Err()
				return ctx.Err()
			case <-time.After(2 * time.Millisecond):
			}
		}
	}
	for i, t := range tokens {
		if mode == modeFailAfter && i == 2 {
			return errors.New("the model crashed")
		}
		if err := w.Write([]byte(t)); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeMiner) embed(_ context.Context, req *protocol.Request, w protocol.ResponseWriter) error {
	r, err := subnet.DecodeEmbedRequest(req.Body)
	if err != nil {
		return protocol.Errorf(protocol.StatusBadRequest, "%v", err)
	}
	dims := int(r.Dimensions)
	if dims == 0 {
		dims = 4
	}
	var a subnet.EmbedAnswer
	for i, in := range r.Input {
		v := make([]float64, dims)
		for j := range v {
			v[j] = float64(len(in)+i) + float64(j)/10
		}
		a.Embeddings = append(a.Embeddings, v)
	}
	return w.Write(a.Encode())
}

// rig is a gateway in front of fake miners on loopback libp2p hosts.
type rig struct {
	t      *testing.T
	miners []*fakeMiner
	meta   *staticMetagraph
	lim    *memLimiter
	rec    *memRecorder
	gw     *Server
	url    string
	client openai.Client
}

const testSecret = "ct-test-secret"

func newRig(t testing.TB, n int, cfg Config, opts ...func(*Server)) *rig {
	t.Helper()
	r := &rig{meta: &staticMetagraph{miners: map[uint16][]Miner{}}, lim: &memLimiter{}, rec: &memRecorder{added: make(chan struct{}, 1)}}
	if tt, ok := t.(*testing.T); ok {
		r.t = tt
	}
	words := strings.Fields("the quick brown fox jumps over the lazy dog")
	for i := range n {
		k := testKey(i)
		nc := node.DefaultTestConfig(k)
		h, err := node.New(context.Background(), nc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		f := &fakeMiner{h: h, key: k, ended: make(chan error, 64), wrote: make(chan struct{}, 1)}
		for _, w := range words {
			f.tokens = append(f.tokens, w+" ")
		}
		scfg := protocol.DefaultServerConfig()
		scfg.Logger = slog.New(slog.DiscardHandler)
		f.srv, err = protocol.NewServer(h, k, anyCaller{}, map[string]protocol.Handler{
			subnet.SynapseChat:  protocol.HandlerFunc(f.chat),
			subnet.SynapseEmbed: protocol.HandlerFunc(f.embed),
		}, scfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.srv.Close() })
		r.miners = append(r.miners, f)
		r.meta.miners[1] = append(r.meta.miners[1], Miner{UID: uint16(i), Hotkey: k.PublicKey().Address().String(),
			Peer: h.ID(), Addrs: h.Addrs(), Incentive: 1, Trust: 1})
	}
	gk := testKey(1000)
	gh, err := node.New(context.Background(), node.DefaultTestConfig(gk))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gh.Close() })
	qc, err := protocol.NewClient(gh, protocol.DefaultClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { qc.Close() })
	if len(cfg.Subnets) == 0 {
		cfg.Subnets = []uint16{1}
	}
	gw, err := New(cfg, Deps{Metagraph: r.meta, Querier: ProtocolQuerier{Host: gh, Client: qc},
		Auth: memAuth{testSecret: "key1"}, Limiter: r.lim, Recorder: r.rec, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range opts {
		o(gw)
	}
	done := make(chan error, 1)
	go func() { done <- gw.Serve(context.Background()) }()
	t.Cleanup(func() {
		gw.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	r.gw = gw
	r.url = "http://" + gw.Addr().String()
	tr := &http.Transport{MaxIdleConnsPerHost: 128}
	t.Cleanup(tr.CloseIdleConnections)
	r.client = openai.NewClient(option.WithBaseURL(r.url+"/v1/"), option.WithAPIKey(testSecret), option.WithMaxRetries(0),
		option.WithHTTPClient(&http.Client{Transport: tr}))
	return r
}

// firstPick makes the gateway's picker always take the first candidate
// with weight (its randomness is always 0).
func firstPick(s *Server) {
	p, err := NewPicker(s.cfg.Routing, time.Now, func() float64 { return 0 })
	if err != nil {
		panic(err)
	}
	s.picker = p
}

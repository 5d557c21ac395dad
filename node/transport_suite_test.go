package node

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/sec"
	libp2pyamux "github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	tptu "github.com/libp2p/go-libp2p/p2p/net/upgrader"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ttransport "github.com/libp2p/go-libp2p/p2p/transport/testsuite"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/cybertensor/cybertensor/node/aegis"
	"github.com/cybertensor/cybertensor/node/yamux"
)

// Issue #18: our security transports pass the tests of the library they
// replace. go-libp2p exports no test suite for a security transport: its
// TLS and noise packages test their own types (p2p/security/tls and
// p2p/security/noise, transport_test.go). The cases below are those tests'
// generic cases, ported to sec.SecureTransport, plus the net.Conn contract
// (golang.org/x/net/nettest's cases that crypto/tls meets), each run in the
// same test against go-libp2p's TLS transport (the reference), our
// batchedTLS and our record transport, so the three are seen to behave
// alike. TestSecurityTransportsInLibp2pTransportSuite then runs go-libp2p's
// transport suite (p2p/transport/testsuite, as p2p/transport/tcp runs it)
// over TCP upgraded with each of them.

// secVariant is a security transport under test.
type secVariant struct {
	name     string
	original bool // go-libp2p's own: the behaviour the others must match
	new      func(key crypto.PrivKey, muxers []tptu.StreamMuxer) (sec.SecureTransport, error)
}

func secVariants() []secVariant {
	vs := []secVariant{
		{name: "libp2p-tls", original: true, new: func(k crypto.PrivKey, m []tptu.StreamMuxer) (sec.SecureTransport, error) {
			t, err := libp2ptls.New(libp2ptls.ID, k, m)
			if err != nil {
				return nil, err
			}
			return t, nil
		}},
		{name: "batchedTLS", new: func(k crypto.PrivKey, m []tptu.StreamMuxer) (sec.SecureTransport, error) {
			t, err := newBatchedTLS(libp2ptls.ID, k, m)
			if err != nil {
				return nil, err
			}
			return t, nil
		}},
	}
	if aegis.Supported {
		vs = append(vs, secVariant{name: "records", new: func(k crypto.PrivKey, m []tptu.StreamMuxer) (sec.SecureTransport, error) {
			t, err := newRecordTransport(k, m)
			if err != nil {
				return nil, err
			}
			return t, nil
		}})
	}
	return vs
}

// The peers of the cases: a client, a server and a third party.
func clientKey() crypto.PrivKey { return key(60).Libp2p() }
func serverKey() crypto.PrivKey { return key(61).Libp2p() }
func thirdKey() crypto.PrivKey  { return key(62).Libp2p() }

func idOf(t testing.TB, k crypto.PrivKey) peer.ID {
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// keyTypes are the key types libp2p's TLS test handshakes with.
var keyTypes = sync.OnceValue(func() []crypto.PrivKey {
	var keys []crypto.PrivKey
	for _, typ := range []int{crypto.ECDSA, crypto.RSA, crypto.Ed25519, crypto.Secp256k1} {
		k, _, err := crypto.GenerateKeyPair(typ, 2048)
		if err != nil {
			panic(err)
		}
		keys = append(keys, k)
	}
	return keys
})

// tapConn is a socket whose next Write, once armed, goes through tamper
// instead (which sees the socket itself), and whose Writes, once split,
// go out in pieces of a given size.
type tapConn struct {
	net.Conn
	mu     sync.Mutex
	tamper func(c net.Conn, p []byte) (int, error)
	piece  int
}

func (c *tapConn) split(piece int) {
	c.mu.Lock()
	c.piece = piece
	c.mu.Unlock()
}

func (c *tapConn) arm(tamper func(c net.Conn, p []byte) (int, error)) {
	c.mu.Lock()
	c.tamper = tamper
	c.mu.Unlock()
}

func (c *tapConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	tamper, piece := c.tamper, c.piece
	c.tamper = nil
	c.mu.Unlock()
	if tamper != nil {
		return tamper(c.Conn, p)
	}
	if piece == 0 {
		return c.Conn.Write(p)
	}
	written := 0
	for len(p) > 0 {
		n, err := c.Conn.Write(p[:min(len(p), piece)])
		written += n
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// gateConn is a socket whose Reads wait until it is closed: a handshake
// on it cannot progress, so only its context can end it.
type gateConn struct {
	net.Conn
	once   sync.Once
	closed chan struct{}
}

func newGateConn(c net.Conn) net.Conn { return &gateConn{Conn: c, closed: make(chan struct{})} }

func (c *gateConn) Read(p []byte) (int, error) {
	<-c.closed
	return c.Conn.Read(p)
}

func (c *gateConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { close(c.closed) })
	return err
}

// tcpPair connects two loopback TCP sockets, closed when the test ends.
func tcpPair(t testing.TB) (client, server *tapConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		c.Close()
		t.FailNow()
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return &tapConn{Conn: c}, &tapConn{Conn: s}
}

// handshake describes one handshake between two transports of a variant.
type handshake struct {
	clientKey, serverKey       crypto.PrivKey  // clientKey() and serverKey() if nil
	clientMuxers, serverMuxers []protocol.ID   // none if nil
	clientWants, serverWants   peer.ID         // the peer each side expects; "" is anyone
	clientCtx, serverCtx       context.Context // 10 s if nil
	// wrap the sockets each side runs on (the tapConns if nil)
	clientSocket, serverSocket func(net.Conn) net.Conn
}

// secured is what a handshake produced.
type secured struct {
	client, server       sec.SecureConn
	clientErr, serverErr error
	rawClient, rawServer *tapConn // the sockets beneath
}

func muxerList(ids []protocol.ID) []tptu.StreamMuxer {
	var ms []tptu.StreamMuxer
	for _, id := range ids {
		ms = append(ms, tptu.StreamMuxer{ID: id})
	}
	return ms
}

// run makes the two transports and runs the handshake over loopback TCP,
// the server in its own goroutine; both conns are closed when the test
// ends.
func (h handshake) run(t *testing.T, v secVariant) secured {
	t.Helper()
	if h.clientKey == nil {
		h.clientKey = clientKey()
	}
	if h.serverKey == nil {
		h.serverKey = serverKey()
	}
	ct, err := v.new(h.clientKey, muxerList(h.clientMuxers))
	if err != nil {
		t.Fatal(err)
	}
	st, err := v.new(h.serverKey, muxerList(h.serverMuxers))
	if err != nil {
		t.Fatal(err)
	}
	for _, ctx := range []*context.Context{&h.clientCtx, &h.serverCtx} {
		if *ctx == nil {
			c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			t.Cleanup(cancel)
			*ctx = c
		}
	}
	var s secured
	s.rawClient, s.rawServer = tcpPair(t)
	var clientSocket, serverSocket net.Conn = s.rawClient, s.rawServer
	if h.clientSocket != nil {
		clientSocket = h.clientSocket(clientSocket)
	}
	if h.serverSocket != nil {
		serverSocket = h.serverSocket(serverSocket)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.server, s.serverErr = st.SecureInbound(h.serverCtx, serverSocket, h.serverWants)
	}()
	s.client, s.clientErr = ct.SecureOutbound(h.clientCtx, clientSocket, h.clientWants)
	<-done
	for _, c := range []sec.SecureConn{s.client, s.server} {
		if c != nil {
			t.Cleanup(func() { c.Close() })
		}
	}
	return s
}

// connect runs a handshake that must succeed: client and server as
// usual, the client expecting the server.
func connect(t *testing.T, v secVariant) secured {
	t.Helper()
	s := handshake{clientWants: idOf(t, serverKey())}.run(t, v)
	if s.clientErr != nil || s.serverErr != nil {
		t.Fatalf("handshake: client %v, server %v", s.clientErr, s.serverErr)
	}
	return s
}

// exchange writes msg on w (unless nil) and reads it whole on r.
func exchange(t *testing.T, w, r net.Conn, msg string) {
	t.Helper()
	if w != nil {
		if _, err := w.Write([]byte(msg)); err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	r.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer r.SetReadDeadline(time.Time{})
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(r, got); err != nil || string(got) != msg {
		t.Fatalf("Read: %q, %v; want %q", got, err, msg)
	}
}

// readErr reads c until an error (at most 10 s) and returns it and the
// bytes read before it.
func readErr(c net.Conn, bufSize int) (int, error) {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	total := 0
	buf := make([]byte, bufSize)
	for {
		n, err := c.Read(buf)
		total += n
		if err != nil {
			return total, err
		}
	}
}

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// A secCase is a case run against each variant.
type secCase struct {
	name string
	run  func(t *testing.T, v secVariant)
}

// TestSecureTransportConformance runs each case against each variant:
// TestSecureTransportConformance/<case>/<variant>.
func TestSecureTransportConformance(t *testing.T) {
	variants := secVariants()
	for _, c := range secCases() {
		t.Run(c.name, func(t *testing.T) {
			for _, v := range variants {
				t.Run(v.name, func(t *testing.T) { c.run(t, v) })
			}
		})
	}
}

func secCases() []secCase {
	return []secCase{
		// libp2ptls TestHandshakeSucceeds, noise TestIDs, TestKeys.
		{"handshake with each key type", caseKeyTypes},
		// libp2ptls TestHandshakeWithNextProtoSucceeds.
		{"muxer chosen in the handshake", caseMuxerNegotiation},
		// libp2ptls TestPeerIDMismatch "for outgoing connections",
		// noise TestPeerIDMismatchOutboundFailsHandshake.
		{"client expecting another peer refuses", caseClientWantsOther},
		// libp2ptls TestPeerIDMismatch "for incoming connections",
		// noise TestPeerIDMismatchInboundFailsHandshake.
		{"server expecting another peer refuses", caseServerWantsOther},
		// noise TestPeerIDMatch.
		{"server expecting the client accepts", caseServerWantsClient},
		// libp2ptls TestInvalidCerts, and its custom-template and
		// critical-extension handshakes, against a crypto/tls peer.
		{"certificates", caseCertificates},
		// noise TestDeadlines.
		{"handshake ends at the context deadline", caseHandshakeDeadline},
		// noise TestContextCancellationRespected, libp2ptls
		// TestHandshakeConnectionCancellations.
		{"cancelled handshake", caseHandshakeCancel},
		// noise TestHandshakeXX, TestBufferEqEncPayload,
		// TestBufferEqDecryptedPayload.
		{"small message", caseSmallMessage},
		// noise TestLargePayloads.
		{"100000 bytes in one Write", caseLargePayload},
		{"megabytes both ways at once", caseBothWays},
		{"concurrent Writes stay whole", caseConcurrentWrites},
		// nettest ConcurrentMethods.
		{"concurrent method calls", caseConcurrentMethods},
		// nettest ReadTimeout, PastTimeout (reads).
		{"read timeout leaves the connection usable", caseReadTimeout},
		// nettest RacyRead, checking the bytes.
		{"reads under expiring deadlines lose no bytes", caseReadDeadlinesMidRecord},
		// nettest FutureTimeout.
		{"deadlines end waiting Reads and Writes", caseFutureDeadlines},
		// nettest WriteTimeout, PastTimeout (writes).
		{"write timeout", caseWriteTimeout},
		{"write cut short by its deadline", caseWriteCutShort},
		// nettest BasicIO, CloseTimeout.
		{"close", caseClose},
		{"stream cut mid-record is an error", caseTruncated},
		// noise TestReadUnencryptedFails.
		{"unencrypted bytes are refused", caseUnencrypted},
		{"flipped bit is refused", caseFlippedBit},
	}
}

func caseKeyTypes(t *testing.T, v secVariant) {
	keys := keyTypes()
	for i, ck := range keys {
		sk := keys[(i+1)%len(keys)]
		t.Run(fmt.Sprintf("%s-%s", ck.Type(), sk.Type()), func(t *testing.T) {
			s := handshake{clientKey: ck, serverKey: sk, clientWants: idOf(t, sk)}.run(t, v)
			if s.clientErr != nil || s.serverErr != nil {
				t.Fatalf("handshake: client %v, server %v", s.clientErr, s.serverErr)
			}
			for _, c := range []struct {
				conn       sec.SecureConn
				local, rem crypto.PrivKey
			}{{s.client, ck, sk}, {s.server, sk, ck}} {
				if c.conn.LocalPeer() != idOf(t, c.local) || c.conn.RemotePeer() != idOf(t, c.rem) {
					t.Errorf("peers %s → %s, want %s → %s", c.conn.LocalPeer(), c.conn.RemotePeer(), idOf(t, c.local), idOf(t, c.rem))
				}
				if !c.conn.RemotePublicKey().Equals(c.rem.GetPublic()) {
					t.Error("the remote public key is not the peer's")
				}
			}
			exchange(t, s.server, s.client, "foobar")
		})
	}
}

func caseMuxerNegotiation(t *testing.T, v secVariant) {
	for _, c := range []struct {
		client, server []protocol.ID
		want           protocol.ID
	}{
		{[]protocol.ID{"muxer1", "muxer2"}, []protocol.ID{"muxer2", "muxer1"}, "muxer1"},
		{[]protocol.ID{"muxer1", "muxer2", "libp2p"}, []protocol.ID{"muxer2", "muxer1", "libp2p"}, "muxer1"},
		{[]protocol.ID{"muxer1", "libp2p"}, []protocol.ID{"libp2p"}, ""},
		{[]protocol.ID{"libp2p"}, []protocol.ID{"libp2p"}, ""},
		{[]protocol.ID{"muxer1"}, []protocol.ID{}, ""},
		{[]protocol.ID{}, []protocol.ID{"muxer1"}, ""},
		{[]protocol.ID{"muxer2"}, []protocol.ID{"muxer1"}, ""},
	} {
		t.Run(fmt.Sprintf("%v-%v", c.client, c.server), func(t *testing.T) {
			s := handshake{clientMuxers: c.client, serverMuxers: c.server, clientWants: idOf(t, serverKey())}.run(t, v)
			if s.clientErr != nil || s.serverErr != nil {
				t.Fatalf("handshake: client %v, server %v", s.clientErr, s.serverErr)
			}
			for _, conn := range []sec.SecureConn{s.client, s.server} {
				st := conn.ConnState()
				if st.StreamMultiplexer != c.want || st.UsedEarlyMuxerNegotiation != (c.want != "") {
					t.Errorf("muxer %q (early %v), want %q", st.StreamMultiplexer, st.UsedEarlyMuxerNegotiation, c.want)
				}
			}
			exchange(t, s.server, s.client, "foobar")
		})
	}
}

func caseClientWantsOther(t *testing.T, v secVariant) {
	for _, want := range []peer.ID{idOf(t, thirdKey()), "a-random-peer-id"} {
		t.Run(string(want[:min(len(want), 8)]), func(t *testing.T) {
			s := handshake{clientWants: want}.run(t, v)
			var mismatch sec.ErrPeerIDMismatch
			if !errors.As(s.clientErr, &mismatch) || mismatch.Expected != want || mismatch.Actual != idOf(t, serverKey()) {
				t.Fatalf("client: %v, want a peer ID mismatch (expected %s, actual the server)", s.clientErr, want)
			}
			serverErr := s.serverErr
			if serverErr == nil {
				_, serverErr = readErr(s.server, 1)
			}
			if serverErr == nil || !strings.Contains(serverErr.Error(), "tls: bad certificate") {
				t.Fatalf("server: %v, want the client's bad certificate alert", serverErr)
			}
		})
	}
}

func caseServerWantsOther(t *testing.T, v secVariant) {
	third := idOf(t, thirdKey())
	s := handshake{clientWants: idOf(t, serverKey()), serverWants: third}.run(t, v)
	var mismatch sec.ErrPeerIDMismatch
	if !errors.As(s.serverErr, &mismatch) || mismatch.Expected != third || mismatch.Actual != idOf(t, clientKey()) {
		t.Fatalf("server: %v, want a peer ID mismatch (expected the third peer, actual the client)", s.serverErr)
	}
	// In TLS 1.3 the client's handshake ends before the server checks its
	// certificate: the client learns of the refusal from its first Read.
	if s.clientErr != nil {
		t.Fatalf("client's handshake: %v", s.clientErr)
	}
	n, err := readErr(s.client, 1)
	if n != 0 || err == nil || isTimeoutErr(err) {
		t.Fatalf("client's Read: %d bytes, %v; want the server's refusal", n, err)
	}
	if !strings.Contains(err.Error(), "tls: bad certificate") {
		t.Fatalf("client's Read: %v; want the server's bad certificate alert", err)
	}
}

func caseServerWantsClient(t *testing.T, v secVariant) {
	s := handshake{clientWants: idOf(t, serverKey()), serverWants: idOf(t, clientKey())}.run(t, v)
	if s.clientErr != nil || s.serverErr != nil {
		t.Fatalf("handshake: client %v, server %v", s.clientErr, s.serverErr)
	}
	if s.server.RemotePeer() != idOf(t, clientKey()) || s.client.RemotePeer() != idOf(t, serverKey()) {
		t.Fatal("remote peers are not the expected ones")
	}
	exchange(t, s.server, s.client, "foobar")
}

// certificate makes a self-signed certificate for an ECDSA key (a new one
// if key is nil).
func certificate(t *testing.T, key *ecdsa.PrivateKey, tmpl *x509.Certificate) tls.Certificate {
	t.Helper()
	if key == nil {
		var err error
		if key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// libp2pExtension is the OID of the certificate extension carrying the
// libp2p key (libp2ptls's extensionID).
var libp2pExtension = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 53594, 1, 1}

// signedKey is the extension's value (libp2ptls's signedKey).
type signedKey struct {
	PubKey    []byte
	Signature []byte
}

// A certTransform changes the certificate a crypto/tls peer, configured
// as libp2ptls configures itself for key k, presents.
type certTransform struct {
	name  string
	apply func(t *testing.T, conf *tls.Config, k crypto.PrivKey)
	// check is the error of the side that validates the certificate;
	// nil means the handshake must succeed.
	check func(err error) bool
}

func certTransforms() []certTransform {
	extensionValue := func(t *testing.T, pub []byte, sig []byte) []byte {
		b, err := asn1.Marshal(signedKey{PubKey: pub, Signature: sig})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	withExtension := func(value []byte) *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(1), ExtraExtensions: []pkix.Extension{{Id: libp2pExtension, Value: value}}}
	}
	contains := func(s string) func(error) bool {
		return func(err error) bool { return err != nil && strings.Contains(err.Error(), s) }
	}
	return []certTransform{
		{"private key not the certificate's", func(t *testing.T, conf *tls.Config, _ crypto.PrivKey) {
			other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			conf.Certificates = []tls.Certificate{{Certificate: conf.Certificates[0].Certificate, PrivateKey: other}}
		}, func(err error) bool {
			return err != nil && (err.Error() == "tls: invalid signature by the client certificate: ECDSA verification failure" ||
				err.Error() == "tls: invalid signature by the server certificate: ECDSA verification failure")
		}},
		{"two certificates", func(t *testing.T, conf *tls.Config, _ crypto.PrivKey) {
			tmpl := &x509.Certificate{SerialNumber: big.NewInt(1)}
			key1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			key2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			der1, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key1.Public(), key1)
			if err != nil {
				t.Fatal(err)
			}
			cert1, err := x509.ParseCertificate(der1)
			if err != nil {
				t.Fatal(err)
			}
			der2, err := x509.CreateCertificate(rand.Reader, tmpl, cert1, key2.Public(), key1)
			if err != nil {
				t.Fatal(err)
			}
			conf.Certificates = []tls.Certificate{{Certificate: [][]byte{der2, der1}, PrivateKey: key2}}
		}, func(err error) bool { return err != nil && err.Error() == "expected one certificates in the chain" }},
		{"expired", func(t *testing.T, conf *tls.Config, _ crypto.PrivKey) {
			tmpl := withExtension([]byte("foobar"))
			tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(-time.Minute)
			conf.Certificates = []tls.Certificate{certificate(t, nil, tmpl)}
		}, contains("certificate has expired or is not yet valid")},
		{"no key extension", func(t *testing.T, conf *tls.Config, _ crypto.PrivKey) {
			conf.Certificates = []tls.Certificate{certificate(t, nil, &x509.Certificate{SerialNumber: big.NewInt(1)})}
		}, func(err error) bool {
			return err != nil && err.Error() == "expected certificate to contain the key extension"
		}},
		{"key extension not parseable", func(t *testing.T, conf *tls.Config, _ crypto.PrivKey) {
			conf.Certificates = []tls.Certificate{certificate(t, nil, withExtension([]byte("foobar")))}
		}, contains("asn1")},
		{"key not parseable", func(t *testing.T, conf *tls.Config, _ crypto.PrivKey) {
			conf.Certificates = []tls.Certificate{certificate(t, nil, withExtension(extensionValue(t, []byte("foobar"), nil)))}
		}, contains("unmarshalling public key failed: proto:")},
		{"signature malformed", func(t *testing.T, conf *tls.Config, k crypto.PrivKey) {
			pub, err := crypto.MarshalPublicKey(k.GetPublic())
			if err != nil {
				t.Fatal(err)
			}
			conf.Certificates = []tls.Certificate{certificate(t, nil, withExtension(extensionValue(t, pub, []byte("foobar"))))}
		}, contains("signature verification failed:")},
		{"signature invalid", func(t *testing.T, conf *tls.Config, k crypto.PrivKey) {
			pub, err := crypto.MarshalPublicKey(k.GetPublic())
			if err != nil {
				t.Fatal(err)
			}
			sig, err := k.Sign([]byte("foobar"))
			if err != nil {
				t.Fatal(err)
			}
			conf.Certificates = []tls.Certificate{certificate(t, nil, withExtension(extensionValue(t, pub, sig)))}
		}, contains("signature invalid")},
		{"custom template (accepted)", func(t *testing.T, conf *tls.Config, k crypto.PrivKey) {
			id, err := libp2ptls.NewIdentity(k, libp2ptls.WithCertTemplate(&x509.Certificate{
				SerialNumber: big.NewInt(7),
				NotBefore:    time.Now().Add(-time.Hour),
				NotAfter:     time.Now().Add(time.Hour),
				Subject:      pkix.Name{CommonName: "custom.test.name"},
				// An email address, as libp2ptls's test sets.
				EmailAddresses: []string{"unittest@example.com"},
			}))
			if err != nil {
				t.Fatal(err)
			}
			custom, _ := id.ConfigForPeer("")
			conf.Certificates = custom.Certificates
		}, nil},
		{"key extension critical (accepted)", func(t *testing.T, conf *tls.Config, k crypto.PrivKey) {
			certKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			ext, err := libp2ptls.GenerateSignedExtension(k, certKey.Public())
			if err != nil {
				t.Fatal(err)
			}
			ext.Critical = true
			conf.Certificates = []tls.Certificate{certificate(t, certKey, &x509.Certificate{SerialNumber: big.NewInt(1), ExtraExtensions: []pkix.Extension{ext}})}
		}, nil},
	}
}

// rogueConfig is the crypto/tls configuration libp2ptls uses for key k,
// its certificate changed by tr.
func rogueConfig(t *testing.T, k crypto.PrivKey, tr certTransform) *tls.Config {
	id, err := libp2ptls.NewIdentity(k)
	if err != nil {
		t.Fatal(err)
	}
	conf, _ := id.ConfigForPeer("")
	tr.apply(t, conf, k)
	return conf
}

func caseCertificates(t *testing.T, v secVariant) {
	for _, tr := range certTransforms() {
		// The client presents the certificate; the server (the variant)
		// validates it.
		t.Run("client: "+tr.name, func(t *testing.T) {
			st, err := v.new(serverKey(), nil)
			if err != nil {
				t.Fatal(err)
			}
			raw, rawServer := tcpPair(t)
			conf := rogueConfig(t, clientKey(), tr)
			type result struct {
				conn sec.SecureConn
				err  error
			}
			server := make(chan result, 1)
			go func() {
				c, err := st.SecureInbound(context.Background(), rawServer, "")
				server <- result{c, err}
			}()
			client := tls.Client(raw, conf)
			defer client.Close()
			client.SetDeadline(time.Now().Add(10 * time.Second))
			if err := client.Handshake(); err != nil {
				t.Fatalf("crypto/tls client: %v", err)
			}
			if tr.check == nil {
				r := <-server
				if r.err != nil {
					t.Fatalf("server refused: %v", r.err)
				}
				defer r.conn.Close()
				if r.conn.RemotePeer() != idOf(t, clientKey()) {
					t.Fatalf("remote peer %s, want the client", r.conn.RemotePeer())
				}
				return
			}
			if _, err := client.Read([]byte{0}); err == nil ||
				(err.Error() != "remote error: tls: error decrypting message" && err.Error() != "remote error: tls: bad certificate") {
				t.Errorf("crypto/tls client's Read: %v, want the server's alert", err)
			}
			if r := <-server; !tr.check(r.err) {
				if r.conn != nil {
					r.conn.Close()
				}
				t.Fatalf("server: %v", r.err)
			}
		})
		// The server presents it; the client (the variant) validates it.
		t.Run("server: "+tr.name, func(t *testing.T) {
			ct, err := v.new(clientKey(), nil)
			if err != nil {
				t.Fatal(err)
			}
			rawClient, raw := tcpPair(t)
			conf := rogueConfig(t, serverKey(), tr)
			server := make(chan error, 1)
			go func() {
				s := tls.Server(raw, conf)
				s.SetDeadline(time.Now().Add(10 * time.Second))
				server <- s.Handshake()
			}()
			c, err := ct.SecureOutbound(context.Background(), rawClient, idOf(t, serverKey()))
			serverErr := <-server
			if tr.check == nil {
				if err != nil || serverErr != nil {
					t.Fatalf("client %v, crypto/tls server %v; want both to succeed", err, serverErr)
				}
				defer c.Close()
				if c.RemotePeer() != idOf(t, serverKey()) {
					t.Fatalf("remote peer %s, want the server", c.RemotePeer())
				}
				return
			}
			if c != nil {
				c.Close()
			}
			if !tr.check(err) {
				t.Fatalf("client: %v", err)
			}
			if serverErr == nil || !strings.Contains(serverErr.Error(), "remote error: tls:") {
				t.Fatalf("crypto/tls server: %v, want the client's alert", serverErr)
			}
		})
	}
}

func caseHandshakeDeadline(t *testing.T, v secVariant) {
	for _, outbound := range []bool{true, false} {
		t.Run(map[bool]string{true: "outbound", false: "inbound"}[outbound], func(t *testing.T) {
			tr, err := v.new(clientKey(), nil)
			if err != nil {
				t.Fatal(err)
			}
			// The peer is silent: nobody runs a handshake on its socket.
			raw, _ := tcpPair(t)
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			var c sec.SecureConn
			if outbound {
				c, err = tr.SecureOutbound(ctx, raw, idOf(t, serverKey()))
			} else {
				c, err = tr.SecureInbound(ctx, raw, "")
			}
			if c != nil {
				c.Close()
			}
			if !isTimeoutErr(err) {
				t.Fatalf("%v, want a timeout", err)
			}
		})
	}
}

func caseHandshakeCancel(t *testing.T, v secVariant) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, outbound := range []bool{true, false} {
		dir := map[bool]string{true: "outbound", false: "inbound"}[outbound]
		t.Run(dir+", silent peer", func(t *testing.T) {
			tr, err := v.new(clientKey(), nil)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := tcpPair(t)
			var c sec.SecureConn
			if outbound {
				c, err = tr.SecureOutbound(cancelled, raw, idOf(t, serverKey()))
			} else {
				c, err = tr.SecureInbound(cancelled, raw, "")
			}
			if c != nil {
				c.Close()
			}
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("%v, want context.Canceled", err)
			}
		})
		// The peer runs its handshake; the cancelled side's socket
		// delivers nothing until the cancellation closes it.
		t.Run(dir+", live peer", func(t *testing.T) {
			h := handshake{clientWants: idOf(t, serverKey())}
			var cancelledErr, otherErr error
			var other sec.SecureConn
			if outbound {
				h.clientCtx, h.clientSocket = cancelled, newGateConn
				s := h.run(t, v)
				cancelledErr, other, otherErr = s.clientErr, s.server, s.serverErr
			} else {
				h.serverCtx, h.serverSocket = cancelled, newGateConn
				s := h.run(t, v)
				cancelledErr, other, otherErr = s.serverErr, s.client, s.clientErr
			}
			if !errors.Is(cancelledErr, context.Canceled) {
				t.Errorf("cancelled side: %v, want context.Canceled", cancelledErr)
			}
			if otherErr == nil {
				_, otherErr = readErr(other, 1)
			}
			if otherErr == nil {
				t.Error("the peer of a cancelled handshake saw no error")
			}
		})
	}
}

func caseSmallMessage(t *testing.T, v secVariant) {
	s := connect(t, v)
	before := []byte("hello world")
	// A buffer of the message and a tag, of the message and a byte: one
	// Read returns the message, no more.
	for _, size := range []int{len(before) + 16, len(before) + 1} {
		if _, err := s.client.Write(before); err != nil {
			t.Fatal(err)
		}
		after := make([]byte, size)
		s.server.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := s.server.Read(after)
		if err != nil || n != len(before) || !bytes.Equal(after[:n], before) {
			t.Fatalf("buffer of %d: Read %d bytes %q, %v; want %q", size, n, after[:n], err, before)
		}
	}
	// A buffer of one byte takes it in as many Reads.
	if _, err := s.server.Write(before); err != nil {
		t.Fatal(err)
	}
	var got []byte
	one := make([]byte, 1)
	s.client.SetReadDeadline(time.Now().Add(10 * time.Second))
	for len(got) < len(before) {
		n, err := s.client.Read(one)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, one[:n]...)
	}
	if !bytes.Equal(got, before) {
		t.Fatalf("read %q byte by byte, want %q", got, before)
	}
}

func caseLargePayload(t *testing.T, v secVariant) {
	s := connect(t, v)
	before := randomBytes(1234, 100000)
	errc := make(chan error, 1)
	go func() {
		_, err := s.client.Write(before)
		errc <- err
	}()
	after := make([]byte, len(before))
	s.server.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.ReadFull(s.server, after)
	if err != nil || n != len(before) || !bytes.Equal(after, before) {
		t.Fatalf("read %d of %d bytes, %v, equal %v", n, len(before), err, bytes.Equal(after, before))
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// caseBothWays sends 4 MiB each way at once, in Writes and Reads of
// random sizes.
func caseBothWays(t *testing.T, v secVariant) {
	s := connect(t, v)
	var wg sync.WaitGroup
	for dir, pair := range [][2]net.Conn{{s.client, s.server}, {s.server, s.client}} {
		data := randomBytes(uint64(10+dir), 4<<20+dir*977)
		pair[1].SetReadDeadline(time.Now().Add(15 * time.Second))
		wg.Go(func() {
			r := mrand.New(mrand.NewPCG(uint64(dir), 1))
			for rest := data; len(rest) > 0; {
				n := min(len(rest), 1+r.IntN(300<<10))
				if _, err := pair[0].Write(rest[:n]); err != nil {
					t.Error(err)
					return
				}
				rest = rest[n:]
			}
		})
		wg.Go(func() {
			r := mrand.New(mrand.NewPCG(uint64(dir), 2))
			got := make([]byte, 0, len(data))
			for len(got) < len(data) {
				size := []int{1, 100, 4 << 10, 64 << 10, 200 << 10}[r.IntN(5)]
				n, err := pair[1].Read(got[len(got):min(len(data), len(got)+size)])
				if err != nil {
					t.Error(err)
					return
				}
				got = got[:len(got)+n]
			}
			if !bytes.Equal(got, data) {
				t.Errorf("direction %d: the bytes read differ from those written", dir)
			}
		})
	}
	wg.Wait()
}

// caseConcurrentWrites has eight goroutines write messages at once: each
// Write arrives whole and each writer's in order.
func caseConcurrentWrites(t *testing.T, v secVariant) {
	s := connect(t, v)
	const writers, messages = 8, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			r := mrand.New(mrand.NewPCG(uint64(w), 3))
			for i := range messages {
				body := randomBytes(uint64(w*1000+i), r.IntN(64<<10))
				msg := binary.BigEndian.AppendUint32(nil, uint32(w))
				msg = binary.BigEndian.AppendUint32(msg, uint32(i))
				msg = binary.BigEndian.AppendUint32(msg, uint32(len(body)))
				if _, err := s.client.Write(append(msg, body...)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	next := make([]int, writers)
	s.server.SetReadDeadline(time.Now().Add(15 * time.Second))
	for range writers * messages {
		var hdr [12]byte
		if _, err := io.ReadFull(s.server, hdr[:]); err != nil {
			t.Fatal(err)
		}
		w, i, n := binary.BigEndian.Uint32(hdr[:]), int(binary.BigEndian.Uint32(hdr[4:])), binary.BigEndian.Uint32(hdr[8:])
		if w >= writers || i != next[w] || n > 64<<10 {
			t.Fatalf("header writer %d message %d length %d: the Writes interleaved (want message %d)", w, i, n, next[min(int(w), writers-1)])
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(s.server, body); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(body, randomBytes(uint64(int(w)*1000+i), int(n))) {
			t.Fatalf("writer %d message %d: body differs", w, i)
		}
		next[w]++
	}
	wg.Wait()
}

// caseConcurrentMethods calls every method at once, for the race detector:
// whatever the results, nothing races, panics or hangs.
func caseConcurrentMethods(t *testing.T, v secVariant) {
	s := connect(t, v)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		io.Copy(io.Discard, s.server)
	}()
	longAgo := time.Unix(1, 0)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() { s.client.Read(make([]byte, 1024)) })
		wg.Go(func() { s.client.Write(make([]byte, 1024)) })
		wg.Go(func() { s.client.SetDeadline(time.Now().Add(10 * time.Millisecond)) })
		wg.Go(func() { s.client.SetReadDeadline(longAgo) })
		wg.Go(func() { s.client.SetWriteDeadline(longAgo) })
		wg.Go(func() { s.client.LocalAddr(); s.client.RemoteAddr() })
		wg.Go(func() {
			s.client.LocalPeer()
			s.client.RemotePeer()
			s.client.RemotePublicKey()
			s.client.ConnState()
		})
	}
	wg.Wait()
	s.client.Close()
	<-drained
}

func caseReadTimeout(t *testing.T, v secVariant) {
	s := connect(t, v)
	s.client.SetReadDeadline(time.Unix(1, 0))
	n, err := s.client.Read(make([]byte, 1024))
	if n != 0 || !isTimeoutErr(err) {
		t.Fatalf("Read past its deadline: %d, %v; want 0 and a timeout", n, err)
	}
	// Writes are not affected, and once the deadline moves the
	// connection reads again.
	exchange(t, s.client, s.server, "after the read timeout")
	s.client.SetReadDeadline(time.Time{})
	exchange(t, s.server, s.client, "read again")
}

// caseReadDeadlinesMidRecord reads 2 MiB, sent in pieces of 500 bytes,
// with deadlines of a fraction of a millisecond, so that they expire with
// records partly arrived: every byte arrives, in order.
func caseReadDeadlinesMidRecord(t *testing.T, v secVariant) {
	s := connect(t, v)
	s.rawServer.split(500)
	data := randomBytes(77, 2<<20)
	go func() {
		r := mrand.New(mrand.NewPCG(4, 4))
		for rest := data; len(rest) > 0; {
			n := min(len(rest), 1+r.IntN(100<<10))
			if _, err := s.server.Write(rest[:n]); err != nil {
				t.Error(err)
				return
			}
			rest = rest[n:]
		}
	}()
	r := mrand.New(mrand.NewPCG(4, 5))
	got := make([]byte, 0, len(data))
	timeouts := 0
	limit := time.Now().Add(15 * time.Second)
	for len(got) < len(data) && time.Now().Before(limit) {
		s.client.SetReadDeadline(time.Now().Add(time.Duration(r.IntN(100)) * time.Microsecond))
		n, err := s.client.Read(got[len(got):min(len(data), len(got)+1+r.IntN(64<<10))])
		got = got[:len(got)+n]
		if isTimeoutErr(err) {
			timeouts++
		} else if err != nil {
			t.Fatalf("after %d bytes and %d timeouts: %v", len(got), timeouts, err)
		}
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("read %d of %d bytes (%d timeouts); equal so far %v", len(got), len(data), timeouts, bytes.Equal(got, data[:len(got)]))
	}
	t.Logf("%d reads timed out", timeouts)
}

func caseFutureDeadlines(t *testing.T, v secVariant) {
	s := connect(t, v)
	// The server neither reads nor writes.
	s.client.SetDeadline(time.Now().Add(100 * time.Millisecond))
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := s.client.Read(make([]byte, 1024)); !isTimeoutErr(err) {
			t.Errorf("Read: %v, want a timeout", err)
		}
	})
	wg.Go(func() {
		var err error
		for i := 0; err == nil && i < 10000; i++ {
			_, err = s.client.Write(make([]byte, 64<<10))
		}
		if !isTimeoutErr(err) {
			t.Errorf("Write: %v, want a timeout", err)
		}
	})
	wg.Wait()
}

func caseWriteTimeout(t *testing.T, v secVariant) {
	s := connect(t, v)
	s.client.SetWriteDeadline(time.Unix(1, 0))
	n, err := s.client.Write(make([]byte, 1024))
	if n != 0 || !isTimeoutErr(err) {
		t.Fatalf("Write past its deadline: %d, %v; want 0 and a timeout", n, err)
	}
	// Reads are not affected.
	exchange(t, s.server, s.client, "after the write timeout")
	// Once the deadline moves, a Write either fails (crypto/tls: a write
	// timeout is final) or its bytes are the next the peer reads.
	s.client.SetWriteDeadline(time.Time{})
	if _, err := s.client.Write([]byte("again")); err == nil {
		exchange(t, nil, s.server, "again")
	}
}

// caseWriteCutShort lets a write deadline pass while Writes wait for a
// peer that does not read: the peer then reads exactly the bytes the
// Writes reported written (with those of a Write after the deadline is
// cleared, if it succeeds), in order, and then an end or an error.
func caseWriteCutShort(t *testing.T, v secVariant) {
	s := connect(t, v)
	stream := make([]byte, 32<<20) // more than loopback TCP buffers
	mrand.NewChaCha8([32]byte{8}).Read(stream)
	reported, at := 0, 0
	s.client.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	var err error
	for err == nil && at+64<<10 <= len(stream)-1000 {
		var n int
		n, err = s.client.Write(stream[at : at+64<<10])
		reported += n
		at += 64 << 10
	}
	if !isTimeoutErr(err) {
		t.Fatalf("Writes to a peer that does not read: %v after %d bytes, want a timeout", err, reported)
	}
	type result struct {
		got []byte
		err error
	}
	read := make(chan result, 1)
	go func() {
		s.server.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(s.server)
		read <- result{got, err}
	}()
	if reported < at {
		// The rest of the cut Write was not taken: a later Write sends
		// the bytes that follow what was reported.
		at = reported
	}
	s.client.SetWriteDeadline(time.Now().Add(10 * time.Second))
	n, err := s.client.Write(stream[at : at+1000])
	if err == nil {
		reported = at + n
	}
	s.client.Close()
	r := <-read
	intact := bytes.Equal(r.got, stream[:len(r.got)])
	if len(r.got) != reported || !intact {
		t.Fatalf("the peer read %d bytes (intact %v), then %v; the Writes reported %d (the later Write: %d, %v)",
			len(r.got), bytes.Equal(r.got, stream[:len(r.got)]), r.err, reported, n, err)
	}
	t.Logf("%d bytes reported and read; the later Write: %v; the peer's read ended with %v", reported, err, r.err)
}

func caseClose(t *testing.T, v secVariant) {
	t.Run("bytes before Close arrive, then EOF", func(t *testing.T) {
		s := connect(t, v)
		data := randomBytes(5, 300<<10)
		closed := make(chan error, 1)
		go func() {
			if _, err := s.client.Write(data); err != nil {
				t.Error(err)
			}
			closed <- s.client.Close()
		}()
		s.server.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(s.server)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("read %d of %d bytes, then %v; want all, then EOF", len(got), len(data), err)
		}
		if err := <-closed; err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	t.Run("Read and Write after Close fail", func(t *testing.T) {
		s := connect(t, v)
		s.client.Close()
		if _, err := s.client.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Read: %v, want net.ErrClosed", err)
		}
		if _, err := s.client.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Write: %v, want net.ErrClosed", err)
		}
	})
	t.Run("Close ends a waiting Read", func(t *testing.T) {
		s := connect(t, v)
		s.client.SetReadDeadline(time.Now().Add(10 * time.Second))
		errc := make(chan error, 1)
		go func() {
			_, err := s.client.Read(make([]byte, 1))
			errc <- err
		}()
		s.client.Close()
		if err := <-errc; err == nil || isTimeoutErr(err) {
			t.Fatalf("Read: %v, want it ended by Close", err)
		}
	})
	t.Run("writing to a closed peer fails", func(t *testing.T) {
		s := connect(t, v)
		s.server.Close()
		s.client.SetWriteDeadline(time.Now().Add(10 * time.Second))
		var err error
		for i := 0; err == nil && i < 10000; i++ {
			_, err = s.client.Write(make([]byte, 64<<10))
		}
		if err == nil || isTimeoutErr(err) {
			t.Fatalf("Write: %v, want the peer's reset", err)
		}
	})
}

// caseTruncated cuts the stream in the middle of a record: the reader
// returns an error, not a clean EOF, and none of the record.
func caseTruncated(t *testing.T, v secVariant) {
	s := connect(t, v)
	s.rawClient.arm(func(c net.Conn, p []byte) (int, error) {
		n, err := c.Write(p[:len(p)/2])
		c.(*net.TCPConn).CloseWrite()
		return n, err
	})
	s.client.Write(randomBytes(6, 1000))
	s.server.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(s.server)
	if err == nil || len(got) != 0 {
		t.Fatalf("read %d bytes, then %v; want none and an error other than EOF", len(got), err)
	}
	t.Logf("error: %v", err)
}

func caseUnencrypted(t *testing.T, v secVariant) {
	// noise's message: a length prefix and the plaintext.
	msg := append([]byte{0, 11}, "hello world"...)
	for _, size := range []int{len(msg) + 1, 1} {
		t.Run(fmt.Sprintf("buffer of %d", size), func(t *testing.T) {
			s := connect(t, v)
			if _, err := s.rawClient.Conn.Write(msg); err != nil {
				t.Fatal(err)
			}
			s.server.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, err := s.server.Read(make([]byte, size))
			if n != 0 || err == nil || isTimeoutErr(err) {
				t.Fatalf("Read: %d, %v; want 0 and an error", n, err)
			}
		})
	}
}

func caseFlippedBit(t *testing.T, v secVariant) {
	s := connect(t, v)
	s.rawClient.arm(func(c net.Conn, p []byte) (int, error) {
		p = bytes.Clone(p)
		p[len(p)/2] ^= 0x10
		return c.Write(p)
	})
	if _, err := s.client.Write(randomBytes(7, 1000)); err != nil {
		t.Fatal(err)
	}
	n, err := readErr(s.server, 2000)
	if n != 0 || err == nil || isTimeoutErr(err) {
		t.Fatalf("Read: %d bytes, %v; want none and an error", n, err)
	}
	if _, again := s.server.Read(make([]byte, 1)); again == nil {
		t.Fatal("a Read after the refusal succeeded")
	}
	t.Logf("error: %v", err)
}

// TestSecurityTransportsInLibp2pTransportSuite runs go-libp2p's transport
// suite (p2p/transport/testsuite), as p2p/transport/tcp runs it, over TCP
// upgraded with each security transport and each yamux: go-yamux (what
// go-libp2p runs the suite with) and ours (what a node uses).
//
// The stress tests open 1,000 and 50,000 streams without waiting for the
// peer to accept them: OpenStream waits, in both muxers, while
// AcceptBacklog (256) of its streams are unacknowledged. (Before ours did,
// the peer reset the streams beyond its backlog and both tests failed.)
//
// With -short (CI's race run) only our yamux runs, without the test of 50
// connections at once.
func TestSecurityTransportsInLibp2pTransportSuite(t *testing.T) {
	ours, err := yamux.New(yamux.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	muxers := []struct {
		name  string
		muxer tptu.StreamMuxer
		skip  []ttransport.TransportSubTestFn
	}{
		{"go-yamux", tptu.StreamMuxer{ID: "/yamux/1.0.0", Muxer: libp2pyamux.DefaultTransport}, nil},
		{"yamux", tptu.StreamMuxer{ID: yamux.ID, Muxer: ours}, nil},
	}
	if testing.Short() {
		muxers = muxers[1:]
		muxers[0].skip = append(muxers[0].skip, ttransport.SubtestStressManyConn10Stream50Msg)
	}
	for _, v := range secVariants() {
		for _, m := range muxers {
			t.Run(v.name+"/"+m.name, func(t *testing.T) {
				transport := func(k crypto.PrivKey) *tcp.TcpTransport {
					st, err := v.new(k, []tptu.StreamMuxer{m.muxer})
					if err != nil {
						t.Fatal(err)
					}
					u, err := tptu.New([]sec.SecureTransport{st}, []tptu.StreamMuxer{m.muxer}, nil, nil, nil)
					if err != nil {
						t.Fatal(err)
					}
					tr, err := tcp.NewTCPTransport(u, nil, nil)
					if err != nil {
						t.Fatal(err)
					}
					return tr
				}
				ta, tb := transport(serverKey()), transport(clientKey())
				addr := ma.StringCast("/ip4/127.0.0.1/tcp/0")
				for _, f := range ttransport.Subtests {
					name := runtime.FuncForPC(reflect.ValueOf(f).Pointer()).Name()
					name = name[strings.LastIndexByte(name, '.')+1:]
					t.Run(name, func(t *testing.T) {
						for _, skip := range m.skip {
							if reflect.ValueOf(skip).Pointer() != reflect.ValueOf(f).Pointer() {
								continue
							}
							t.Skip("-short")
						}
						f(t, ta, tb, addr, idOf(t, serverKey()))
					})
				}
			})
		}
	}
}

package node

import (
	"context"
	"net"
	"testing"

	"github.com/libp2p/go-libp2p/core/sec"
	libp2pyamux "github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	tptu "github.com/libp2p/go-libp2p/p2p/net/upgrader"

	"github.com/cybertensor/cybertensor/node/yamux"
	"github.com/cybertensor/cybertensor/node/yamux/yamuxtest"
)

// The hostile-peer suite (issue #18) over the record transport, as the
// host uses it: the attacker writes raw yamux frames as record plaintext.
// Our muxer keeps every protection go-yamux has over the same
// connections, measured against it in the same run.
func TestHostile(t *testing.T) {
	needAEGIS(t)
	ours, err := yamux.New(yamux.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	yamuxtest.Run(t, yamuxtest.Suite{
		Muxers: []yamuxtest.Muxer{
			{Name: "go-yamux", Transport: libp2pyamux.DefaultTransport, Original: true},
			{Name: "ours", Transport: ours},
		},
		Pipe: hostileRecordPair,
	})
}

// hostileRecordPair connects a victim (the record transport's server,
// key 31) and an attacker (its client, key 30) over loopback TCP whose
// sockets are counted.
func hostileRecordPair(t *testing.T) yamuxtest.Conns {
	t.Helper()
	mux, err := yamux.New(yamux.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	muxers := []tptu.StreamMuxer{{ID: yamux.ID, Muxer: mux}}
	ct, err := newRecordTransport(key(30).Libp2p(), muxers)
	if err != nil {
		t.Fatal(err)
	}
	st, err := newRecordTransport(key(31).Libp2p(), muxers)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type server struct {
		conn   sec.SecureConn
		socket *yamuxtest.Counter
		err    error
	}
	done := make(chan server, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			done <- server{err: err}
			return
		}
		socket := yamuxtest.Count(raw)
		c, err := st.SecureInbound(context.Background(), socket, key(30).PublicKey().PeerID())
		if err != nil {
			raw.Close()
		}
		done <- server{c, socket, err}
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	socket := yamuxtest.Count(raw)
	client, err := ct.SecureOutbound(context.Background(), socket, key(31).PublicKey().PeerID())
	srv := <-done
	if err != nil || srv.err != nil {
		raw.Close()
		if srv.conn != nil {
			srv.conn.Close()
		}
		t.Fatalf("handshake: client %v, server %v", err, srv.err)
	}
	return yamuxtest.Conns{Victim: srv.conn, Attacker: client, VictimSocket: srv.socket, AttackerSocket: socket}
}

package node

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/sec"
	tptu "github.com/libp2p/go-libp2p/p2p/net/upgrader"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"

	"github.com/cybertensor/cybertensor/node/aegis"
	"github.com/cybertensor/cybertensor/node/yamux"
)

// BenchmarkSecureHandshake is one handshake of each security transport a
// node offers (the TLS handshake under our records, libp2p's TLS, noise)
// between two secp256k1 hosts, over loopback TCP: the crypto, framing and
// system calls both ends spend securing a new connection, which a
// validator letting go of its miners between turns pays once a turn
// (BENCHMARKS.md). cpu-µs/op is the process's CPU (both ends) a handshake.
//
//	go test ./node -run '^$' -bench SecureHandshake
func BenchmarkSecureHandshake(b *testing.B) {
	mux, err := yamux.New(yamux.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	muxers := []tptu.StreamMuxer{{ID: yamux.ID, Muxer: mux}}
	type maker func(crypto.PrivKey) (sec.SecureTransport, error)
	makers := []struct {
		name string
		make maker
	}{
		{"tls", func(k crypto.PrivKey) (sec.SecureTransport, error) { return libp2ptls.New(libp2ptls.ID, k, muxers) }},
		{"noise", func(k crypto.PrivKey) (sec.SecureTransport, error) { return noise.New(noise.ID, k, muxers) }},
	}
	if aegis.Supported {
		makers = append([]struct {
			name string
			make maker
		}{{"records", func(k crypto.PrivKey) (sec.SecureTransport, error) { return newRecordTransport(k, muxers) }}}, makers...)
	}
	for _, m := range makers {
		b.Run(m.name, func(b *testing.B) {
			client, err := m.make(key(30).Libp2p())
			if err != nil {
				b.Fatal(err)
			}
			server, err := m.make(key(31).Libp2p())
			if err != nil {
				b.Fatal(err)
			}
			want := key(31).PublicKey().PeerID()
			ctx := context.Background()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			b.ReportAllocs()
			cpu := processCPU()
			for b.Loop() {
				done := make(chan error, 1)
				go func() {
					s, err := ln.Accept()
					if err != nil {
						done <- err
						return
					}
					conn, err := server.SecureInbound(ctx, s, "")
					if err == nil {
						conn.Close()
					} else {
						s.Close()
					}
					done <- err
				}()
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				conn, err := client.SecureOutbound(ctx, c, want)
				if err != nil {
					b.Fatal(err)
				}
				if err := <-done; err != nil {
					b.Fatal(err)
				}
				conn.Close()
			}
			b.ReportMetric(float64((processCPU()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// processCPU is the CPU time (user and system) the process has used.
func processCPU() time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

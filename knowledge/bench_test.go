package knowledge

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

// BenchmarkFetch64MiB fetches a 64 MiB object between two neurons on
// loopback (TLS, yamux, every block verified and stored durably), against
// a raw TCP socket copying the same bytes, in the same run.
func BenchmarkFetch64MiB(b *testing.B) {
	const size = 64 << 20
	body := goRandom(size, 11)
	b.Run("knowledge", func(b *testing.B) {
		ns := swarm(b, 2)
		ctx := context.Background()
		obj, err := ns[0].lib.Publish(ctx, bytes.NewReader(body), Meta{Title: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		from := peer.AddrInfo{ID: ns[0].n.ID(), Addrs: ns[0].n.Addrs()}
		b.SetBytes(size)
		b.ResetTimer()
		for range b.N {
			if err := ns[1].lib.Fetch(ctx, obj.CID, WithProviders(from)); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if st, err := ns[1].lib.GC(); err != nil || st.Roots != 1 {
				b.Fatalf("gc %+v %v", st, err)
			}
			b.StartTimer()
		}
	})
	b.Run("raw-tcp", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Write(body)
				c.Close()
			}
		}()
		buf := make([]byte, size)
		b.SetBytes(size)
		b.ResetTimer()
		for range b.N {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(c, buf); err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
		b.StopTimer()
		ln.Close()
		<-done
	})
}

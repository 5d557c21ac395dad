package knowledge

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

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

// BenchmarkStoreImport100MiB writes a 100 MiB import (400 blocks of
// 256 KiB, random CIDs, as a fetch stores them) into a store that already
// holds held objects of the same size, reporting the bytes the process
// wrote to disk per byte imported and its CPU time: a store whose new
// blocks rewrite their neighbours writes several times the data. The
// baseline is the same bytes written to a plain file and fsynced.
func BenchmarkStoreImport100MiB(b *testing.B) {
	const size, held = 100 << 20, 3
	for _, name := range []string{"store", "plain-file"} {
		b.Run(name, func(b *testing.B) {
			var s *store
			if name == "store" {
				var err error
				s, err = openStore(DefaultConfig(b.TempDir()))
				if err != nil {
					b.Fatal(err)
				}
				defer s.close()
				for i := range held {
					importBlocks(b, s, size, int64(1000+i))
				}
			}
			b.SetBytes(size)
			var wrote int64
			var cpu time.Duration
			b.ResetTimer()
			for i := range b.N {
				w0, c0 := diskWrites(), processCPU()
				if s != nil {
					importBlocks(b, s, size, int64(i))
				} else {
					plainFileWrite(b, size, int64(i))
				}
				wrote += diskWrites() - w0
				cpu += processCPU() - c0
			}
			b.ReportMetric(float64(wrote)/float64(b.N*size), "disk/byte")
			b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
		})
	}
}

// importBlocks stores size bytes of seeded blocks as one import.
func importBlocks(tb testing.TB, s *store, size int, seed int64) {
	tb.Helper()
	im := s.newImport(context.Background())
	im.behind = true
	root, _, err := importBody(context.Background(), bytes.NewReader(goRandom(size, seed)), 1<<30, im.put)
	if err != nil {
		tb.Fatal(err)
	}
	if err := im.commit(root, rootRecord{Kind: kindFile, Size: int64(size), Pinned: true}); err != nil {
		tb.Fatal(err)
	}
}

// plainFileWrite writes size seeded bytes to a new file and fsyncs it.
func plainFileWrite(tb testing.TB, size int, seed int64) {
	f, err := os.Create(filepath.Join(tb.TempDir(), "plain"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(goRandom(size, seed)); err != nil {
		tb.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		tb.Fatal(err)
	}
}

// diskWrites is the bytes this process has caused to be written to disk.
func diskWrites() int64 {
	b, _ := os.ReadFile("/proc/self/io")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// processCPU is this process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

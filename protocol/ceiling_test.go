package protocol

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	stdnet "net"
	"testing"
)

// The transfer ceiling: the least work any TLS 1.3 channel does to move a
// blob with Go's AES-128-GCM, measured alongside the real transfers. The
// sender copies each 16 KiB of plaintext behind a 5-byte record header,
// seals it in place and writes 64 KiB batches; the receiver reads whole
// records, opens them in place and copies the plaintext out. Sealing and
// writing run on goroutines of their own, as do reading and opening, so
// both cores are used. No handshake, muxer, framing or library
// bookkeeping: a real TLS channel can only be slower. Neurons no longer
// use TLS records between themselves (node's /cybertensor/tls-records,
// AEGIS-128L), so they beat it; it stays as the yardstick that does not
// change from one build to the next.

const (
	ceilingRecord = 16 << 10
	ceilingBatch  = 64 << 10
	ceilingTag    = 16
)

func ceilingAEAD() cipher.AEAD {
	block, err := aes.NewCipher(make([]byte, 16))
	if err != nil {
		panic(err)
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return g
}

// ceilingTransfer connects two loopback TCP sockets and returns a func
// moving blob across them once as sealed records.
func ceilingTransfer(b *testing.B, blob []byte) (get func(), stop func()) {
	l, err := stdnet.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan stdnet.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	src, err := stdnet.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	dst := <-accepted
	if dst == nil {
		b.Fatal("accept failed")
	}
	out := make([]byte, ceilingRecord)
	sendBufs, recvBufs := make(chan []byte, 3), make(chan []byte, 3)
	for range 3 {
		sendBufs <- make([]byte, 0, ceilingBatch+ceilingBatch/ceilingRecord*64)
		recvBufs <- make([]byte, 0, 2*ceilingBatch)
	}
	return func() {
			sent := make(chan error, 1)
			go func() { sent <- sealAndSend(src, blob, sendBufs) }()
			if err := receiveAndOpen(dst, out, len(blob), recvBufs); err != nil {
				b.Fatal(err)
			}
			if err := <-sent; err != nil {
				b.Fatal(err)
			}
		}, func() {
			src.Close()
			dst.Close()
		}
}

// sealAndSend seals blob into records in batches (buffers taken from and
// returned to free), which a second goroutine writes.
func sealAndSend(c stdnet.Conn, blob []byte, free chan []byte) error {
	g := ceilingAEAD()
	full := make(chan []byte, 2)
	written := make(chan error, 1)
	go func() {
		var err error
		for batch := range full {
			if err == nil {
				_, err = c.Write(batch)
			}
			free <- batch
		}
		written <- err
	}()
	var nonce [12]byte
	var seq uint64
	for off := 0; off < len(blob); {
		batch := (<-free)[:0]
		for len(batch) < ceilingBatch && off < len(blob) {
			n := min(ceilingRecord, len(blob)-off)
			h := len(batch)
			batch = append(batch, 23, 3, 3, 0, 0)
			binary.BigEndian.PutUint16(batch[h+3:], uint16(n+1+ceilingTag))
			p := len(batch)
			batch = append(batch, blob[off:off+n]...)
			batch = append(batch, 23) // the inner content type
			binary.BigEndian.PutUint64(nonce[4:], seq)
			seq++
			batch = g.Seal(batch[:p], nonce[:], batch[p:], batch[h:p])
			off += n
		}
		full <- batch
	}
	close(full)
	return <-written
}

// receiveAndOpen reads total bytes of plaintext sent by sealAndSend: one
// goroutine reads whole records in batches, this one opens them and
// copies the plaintext to out. Batch buffers are taken from and returned
// to free.
func receiveAndOpen(c stdnet.Conn, out []byte, total int, free chan []byte) error {
	g := ceilingAEAD()
	records := (total + ceilingRecord - 1) / ceilingRecord
	wire := total + records*(5+1+ceilingTag)
	full := make(chan []byte, 2)
	readErr := make(chan error, 1)
	go func() {
		defer close(full)
		var carry []byte
		for got := 0; got < wire; {
			batch := append((<-free)[:0], carry...)
			for {
				n, err := c.Read(batch[len(batch):cap(batch)])
				if err != nil {
					readErr <- err
					return
				}
				batch = batch[:len(batch)+n]
				end := 0 // after the last whole record
				for end+5 <= len(batch) {
					l := int(binary.BigEndian.Uint16(batch[end+3:]))
					if end+5+l > len(batch) {
						break
					}
					end += 5 + l
				}
				if end >= ceilingBatch || got+end == wire {
					carry = append(carry[:0], batch[end:]...)
					got += end
					full <- batch[:end]
					break
				}
			}
		}
		readErr <- nil
	}()
	var nonce [12]byte
	var seq uint64
	var openErr error
	for batch := range full {
		for pos := 0; pos < len(batch) && openErr == nil; {
			l := int(binary.BigEndian.Uint16(batch[pos+3:]))
			binary.BigEndian.PutUint64(nonce[4:], seq)
			seq++
			plain, err := g.Open(batch[pos+5:pos+5], nonce[:], batch[pos+5:pos+5+l], batch[pos:pos+5])
			if err != nil || len(plain) == 0 || plain[len(plain)-1] != 23 {
				openErr = errors.New("ceiling: a record did not open")
				break
			}
			copy(out, plain[:len(plain)-1])
			pos += 5 + l
		}
		free <- batch[:0]
	}
	if err := <-readErr; err != nil {
		return err
	}
	return openErr
}

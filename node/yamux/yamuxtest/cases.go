package yamuxtest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

// pingFlood: pings from a peer that never reads the answers. A victim
// that queues an answer to each holds all of them.
func pingFlood(e *env) {
	e.peerStopsReading()
	e.startHeap()
	var id uint32
	why := e.flood(e.floodBytes(), func(b []byte) []byte {
		for len(b)+headerSize <= cap(b) {
			id++
			b = header{typ: typePing, flags: flagSYN, length: id}.appendTo(b)
		}
		return b
	})
	e.settle()
	e.checkHeld(floodAllowance, floodCap, fmt.Sprintf("ping flood: %s; %s", why, e.intake()))
}

// synFlood: streams opened and never accepted, from a peer that never
// reads. Past the accept backlog the victim refuses them with resets,
// which it must not queue without bound.
func synFlood(e *env) {
	e.peerStopsReading()
	e.startHeap()
	id := uint32(1)
	why := e.flood(e.floodBytes(), func(b []byte) []byte {
		for len(b)+headerSize <= cap(b) {
			b = header{typ: typeWindowUpdate, flags: flagSYN, stream: id}.appendTo(b)
			id += 2
		}
		return b
	})
	e.settle()
	e.checkHeld(floodAllowance, floodCap, fmt.Sprintf("SYN flood: %s (%d streams); %s", why, id/2, e.intake()))
}

// synRSTFlood: streams opened and reset at once, never accepted, from a
// peer that never reads.
func synRSTFlood(e *env) {
	e.peerStopsReading()
	e.startHeap()
	id := uint32(1)
	why := e.flood(e.floodBytes(), func(b []byte) []byte {
		for len(b)+2*headerSize <= cap(b) {
			b = header{typ: typeWindowUpdate, flags: flagSYN, stream: id}.appendTo(b)
			b = header{typ: typeWindowUpdate, flags: flagRST, stream: id}.appendTo(b)
			id += 2
		}
		return b
	})
	e.settle()
	e.checkHeld(floodAllowance, floodCap, fmt.Sprintf("SYN+RST flood: %s (%d streams); %s", why, id/2, e.intake()))
}

// windowUpdateFlood: window updates on an open stream and on streams that
// do not exist, from a peer that never reads.
func windowUpdateFlood(e *env) {
	st := e.openStream(1, 0)
	defer st.Reset()
	e.peerStopsReading()
	e.startHeap()
	unknown := uint32(1001)
	why := e.flood(e.floodBytes(), func(b []byte) []byte {
		for len(b)+2*headerSize <= cap(b) {
			b = header{typ: typeWindowUpdate, stream: 1, length: 1}.appendTo(b)
			b = header{typ: typeWindowUpdate, stream: unknown, length: 1 << 20}.appendTo(b)
			unknown += 2
		}
		return b
	})
	e.settle()
	e.checkHeld(floodAllowance, floodCap, fmt.Sprintf("window update flood: %s; %s", why, e.intake()))
}

// windowViolation: a stream sent more than its 256 KiB window, in data
// frames of the given sizes, bodies included. The victim must end the
// session as a protocol error.
func windowViolation(e *env, sizes ...int) {
	st := e.openStream(1, 0)
	body := pattern(initialWindow + 1)
	var frames []byte
	for _, n := range sizes {
		frames = header{typ: typeData, stream: 1, length: uint32(n)}.appendTo(frames)
		frames = append(frames, body[:n]...)
	}
	wrote := make(chan error, 1)
	go func() {
		// The victim may close before taking it all.
		e.attacker.SetWriteDeadline(time.Now().Add(waitLimit))
		_, err := e.attacker.Write(frames)
		wrote <- err
	}()
	defer func() { <-wrote }()
	e.expectProtocolClose(st, fmt.Sprintf("data frames of %v bytes on a 256 KiB window", sizes))
}

// giantFrame: a data header announcing length bytes more than the window
// (on a new stream if syn, else on an accepted one), and no body. The
// victim must end the session without waiting for the body and without
// allocating for it.
func giantFrame(e *env, syn bool, length uint32) {
	var st network.MuxedStream
	h := header{typ: typeData, stream: 1, length: length}
	if syn {
		h.flags = flagSYN
	} else {
		st = e.openStream(1, 0)
	}
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	e.write(h.appendTo(nil))
	if syn {
		// The stream may be accepted before the session ends, or not.
		go func() {
			if s, err := e.victim.AcceptStream(); err == nil {
				s.Reset()
			}
		}()
	}
	e.expectProtocolClose(st, fmt.Sprintf("a data header of %d bytes", length))
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	got := int64(after.TotalAlloc - before.TotalAlloc)
	e.t.Logf("the process allocated %s meanwhile", mib(got))
	if got > giantAllocation {
		e.t.Errorf("the victim allocated %s before closing on a %d-byte data header, more than %s", mib(got), length, mib(giantAllocation))
	}
}

// expectProtocolClose checks that the victim ends the session within
// waitLimit: its connection ends (after a go away carrying the protocol
// error code, if it sends one), its session reports closed and st (if
// not nil) fails.
func (e *env) expectProtocolClose(st network.MuxedStream, what string) {
	e.t.Helper()
	e.attacker.SetReadDeadline(time.Now().Add(waitLimit))
	goAway := false
	for {
		h, err := readHeader(e.attacker)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				e.t.Fatalf("after %s the victim's connection stayed open %v", what, waitLimit)
			}
			break
		}
		if h.typ == typeGoAway {
			goAway = true
			if h.length != goAwayProtoErr {
				e.t.Errorf("after %s the victim sent a go away with code %d, not %d (protocol error)", what, h.length, goAwayProtoErr)
			}
			break
		}
	}
	e.waitClosed(what)
	e.t.Logf("closed after %s; go away sent: %v", what, goAway)
	if st == nil {
		return
	}
	// Data that arrived within the window may be read first.
	out := make(chan ioResult, 1)
	buf := make([]byte, 64<<10)
	t := time.NewTimer(waitLimit)
	defer t.Stop()
	for got := 0; ; {
		go readOnce(st, buf, out)
		select {
		case r := <-out:
			got += r.n
			if r.err == nil {
				continue
			}
			if r.err == io.EOF {
				e.t.Errorf("after %s the victim's stream read %d bytes and io.EOF, want an error", what, got)
			}
		case <-t.C:
			e.t.Errorf("after %s the victim's stream Read blocked for %v", what, waitLimit)
		}
		return
	}
}

// stallMidFrame: the victim's Read waits with a large buffer; the
// attacker sends a 64 KiB data header and 1 KiB of its body, then stalls.
// A read deadline set then must end the Read within deadlineSlack, with a
// timeout (as go-yamux does; returning some of the data first is
// accepted). When the rest arrives, Reads return the body whole.
func stallMidFrame(e *env) {
	const size, part = 64 << 10, 1 << 10
	st := e.openStream(1, 0)
	defer st.Reset()
	body := pattern(size)
	frame := header{typ: typeData, stream: 1, length: size}.appendTo(nil)
	frame = append(frame, body[:part]...)
	buf := make([]byte, 1<<20) // large: a muxer may read the body straight into it
	out := make(chan ioResult, 1)
	go readOnce(st, buf, out)
	e.waitParked("readOnce")
	e.write(frame)
	e.waitTaken()
	set := time.Now()
	st.SetReadDeadline(set.Add(readDeadline))
	var got []byte
	limit := time.NewTimer(readDeadline + deadlineSlack)
	defer limit.Stop()
	for timedOut := false; !timedOut; {
		select {
		case r := <-out:
			got = append(got, buf[:r.n]...)
			switch {
			case isTimeout(r.err):
				timedOut = true
				e.t.Logf("Read returned %v after the deadline was set (deadline %v), %d bytes before", r.at.Sub(set), readDeadline, len(got))
			case r.err != nil:
				e.t.Fatalf("Read on a stalled frame: %v, want a timeout", r.err)
			default:
				go readOnce(st, buf, out)
			}
		case <-limit.C:
			e.t.Fatalf("a Read waiting on a frame stalled mid-body was still blocked %v after its deadline of %v (%d of %d bytes of the body sent; Reads returned %d)",
				deadlineSlack, readDeadline, part, size, len(got))
		}
	}
	if !bytes.Equal(got, body[:len(got)]) || len(got) > part {
		e.t.Fatalf("Reads before the deadline returned %d bytes that are not the body's first bytes", len(got))
	}
	// The rest arrives; nothing was lost.
	e.write(body[part:])
	st.SetReadDeadline(time.Now().Add(waitLimit))
	for len(got) < size {
		go readOnce(st, buf, out)
		r := <-out
		got = append(got, buf[:r.n]...)
		if r.err != nil {
			e.t.Fatalf("after the body's rest arrived: %d of %d bytes, then %v", len(got), size, r.err)
		}
	}
	if !bytes.Equal(got, body) {
		e.t.Fatalf("the body read after the stall differs from the one sent")
	}
}

// writeDeadlineNoWindow: the attacker reads all but never grants window;
// a Write of more than the window returns at its deadline.
func writeDeadlineNoWindow(e *env) {
	st := e.openStream(1, 0)
	defer st.Reset()
	go drain(e.attacker)
	e.checkWriteDeadline(st, 1<<20, "a peer that reads but grants no window")
}

// writeDeadlineNotReading: the attacker grants a large window but never
// reads, so the connection fills; a Write returns at its deadline.
func writeDeadlineNotReading(e *env) {
	// Not reset after: a reset may wait for the blocked connection.
	st := e.openStream(1, 64<<20)
	e.peerStopsReading()
	e.checkWriteDeadline(st, 16<<20, "a peer that grants 64 MiB of window but never reads")
}

func (e *env) checkWriteDeadline(st network.MuxedStream, size int, peer string) {
	e.t.Helper()
	data := make([]byte, size)
	out := make(chan ioResult, 1)
	set := time.Now()
	st.SetWriteDeadline(set.Add(readDeadline))
	go writeOnce(st, data, out)
	t := time.NewTimer(readDeadline + deadlineSlack)
	defer t.Stop()
	select {
	case r := <-out:
		e.t.Logf("Write returned %d bytes and %v after %v (deadline %v)", r.n, r.err, r.at.Sub(set), readDeadline)
		if !isTimeout(r.err) {
			e.t.Errorf("a Write of %s to %s returned %d bytes and %v, want a timeout", mib(int64(size)), peer, r.n, r.err)
		}
	case <-t.C:
		e.t.Errorf("a Write of %s to %s was still blocked %v after its deadline of %v", mib(int64(size)), peer, deadlineSlack, readDeadline)
	}
}

// truncated: the attacker's connection ends inside a data frame's body,
// or inside a header. The session ends with an error, and a stream's Read
// fails with an error, not io.EOF: its data was cut.
func truncated(e *env, midBody bool) {
	st := e.openStream(1, 0)
	out := make(chan ioResult, 16)
	buf := make([]byte, 1<<20)
	go readOnce(st, buf, out)
	e.waitParked("readOnce")
	go drain(e.attacker)
	if midBody {
		e.write(append(header{typ: typeData, stream: 1, length: 1000}.appendTo(nil), pattern(10)...))
	} else {
		e.write(header{typ: typeData, stream: 1, length: 1000}.appendTo(nil)[:6])
	}
	// A FIN after whole records (on a secure connection): the victim's
	// end reads a clean EOF inside the muxer's frame.
	if cw, ok := e.conns.AttackerSocket.Conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	} else {
		e.attacker.Close()
	}
	got := 0
	t := time.NewTimer(waitLimit)
	defer t.Stop()
	for {
		select {
		case r := <-out:
			got += r.n
			if r.err == nil {
				go readOnce(st, buf, out)
				continue
			}
			if r.err == io.EOF {
				e.t.Errorf("a stream whose frame was cut read %d bytes then io.EOF, want an error", got)
			}
			if got > 10 {
				e.t.Errorf("a stream read %d bytes of a frame cut after 10", got)
			}
		case <-t.C:
			e.t.Fatalf("a stream's Read was still blocked %v after the connection ended", waitLimit)
		}
		break
	}
	e.waitClosed("the connection ended mid-frame")
}

// manyStreamsNeverRead: the attacker opens streams and fills each with as
// much as the victim lets it, which accepts them but never reads. Each
// stream's data header (256 KiB) and first 64 KiB arrive before the
// victim accepts it, so its ACK is computed while the body is in flight;
// bytes in flight must not be granted again. The victim must hold no
// more than its scope reserved (plus a little per stream), and grant no
// stream more window than the memory reserved for it.
func manyStreamsNeverRead(e *env) {
	k := 64
	if testing.Short() {
		k = 32
	}
	const part = 64 << 10
	body := pattern(initialWindow)
	frame := make([]byte, 0, headerSize+part)
	more := make([]byte, 0, headerSize)
	streams := make([]network.MuxedStream, 0, k)
	defer func() {
		for _, st := range streams {
			st.Reset()
		}
	}()
	granted, over := int64(0), 0
	e.startHeap()
	for i := range k {
		id := uint32(2*i + 1)
		frame = header{typ: typeData, flags: flagSYN, stream: id, length: initialWindow}.appendTo(frame[:0])
		frame = append(frame, body[:part]...)
		e.write(frame)
		e.waitTaken()
		streams = append(streams, e.accept())
		extra := e.awaitACK(id)
		e.write(body[part:])
		for left := extra; left > 0; {
			n := min(left, initialWindow)
			e.write(header{typ: typeData, stream: id, length: uint32(n)}.appendTo(more[:0]))
			e.write(body[:n])
			left -= n
		}
		granted += initialWindow + int64(extra)
		if extra > 0 {
			over++
		}
	}
	e.settle()
	reserved := e.scope.memory()
	what := fmt.Sprintf("%d streams never read, granted %s of window in all, %d of them more than the initial 256 KiB", k, mib(granted), over)
	if granted > reserved {
		e.t.Errorf("the victim let the attacker send %s to %d streams it never read, more than the %s its scope reserved (%d streams granted more than 256 KiB)",
			mib(granted), k, mib(reserved), over)
	}
	e.checkHeld(streamsAllowance+int64(k)*perStream, 0, what)
}

// awaitACK reads the victim's frames until the ACK of stream id and
// returns the window it granted with it (beyond the initial window).
func (e *env) awaitACK(id uint32) int {
	e.t.Helper()
	e.attacker.SetReadDeadline(time.Now().Add(waitLimit))
	for {
		h, err := readHeader(e.attacker)
		if err != nil {
			e.t.Fatalf("waiting for the ACK of stream %d: %v", id, err)
		}
		if h.typ == typeWindowUpdate && h.stream == id && h.flags&flagACK != 0 {
			return int(h.length)
		}
		if h.typ == typeWindowUpdate && h.stream == id && h.flags&flagRST != 0 {
			e.t.Fatalf("the victim reset stream %d", id)
		}
	}
}

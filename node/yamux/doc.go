// Package yamux is a stream multiplexer speaking the yamux protocol
// (/yamux/1.0.0) exactly as go-yamux v5 does, so a node using it talks to
// any libp2p peer using go-yamux, and it implements go-libp2p's
// network.Multiplexer, MuxedConn and MuxedStream. node.New registers it
// in place of libp2p.DefaultMuxers.
//
// # Wire protocol
//
// Every frame starts with a 12-byte header: version (0), type, flags,
// stream ID and length, big-endian. Types are data (the only frame with a
// body, of length bytes), window update (length adds to the sender's
// send window), ping (length is an opaque value echoed back with ACK) and
// go away (length is the code: 0 normal, 1 protocol error, 2 internal
// error, or a libp2p connection error code from CloseWithError). Flags
// are SYN (opens a stream), ACK (accepts it), FIN (half-closes it) and
// RST (resets it; on a window update the length carries the
// network.StreamErrorCode of ResetWithError, as go-yamux v5.1 does).
// Clients open odd stream IDs, servers even ones. Each direction of a
// stream starts with a 256 KiB window; the receiver sends window updates
// as its reader consumes data and, like go-yamux, doubles the window (up
// to 16 MiB, if the resource manager grants the memory) when updates
// come faster than four round trips, the round trip being measured by
// keepalive pings.
//
// # Why our own
//
// go-yamux hands each frame to a send goroutine through a channel,
// copying the body into a pooled buffer, and buffers every received body
// before the reader copies it out; per session it keeps a 256-entry
// accept channel, a 64-entry send channel, a logger and three
// goroutines. On two cores a bulk transfer is CPU-bound, and a neuron
// holds many idle connections. Here:
//
//   - A writer without a deadline writes its data frames itself, under
//     the session's write lock, header and body straight from its slice.
//     On node's secure connections (FrameWriter) up to four frames go out
//     as one batched write. A Write with a deadline queues a copy of its
//     frames instead (as go-yamux queues every frame) and returns once
//     they are queued, so it returns at its deadline even while the
//     connection takes no bytes; queued bodies still go to a FrameWriter
//     as parts of their own.
//   - Small frames (up to 4 KiB of body: control frames, small writes)
//     written while another goroutine holds the write lock are appended
//     to a queue its holder writes, batched, before letting go; so many
//     concurrent small writers share few writes, and nobody sending a
//     window update or a ping answer waits behind a large frame. The
//     queue is bounded (64 KiB of small frames, 256 KiB with queued data)
//     and what it holds past 4 KiB is charged to the peer's resource scope.
//   - The session's one reader goroutine reads frames' bodies into pooled
//     buffers of 16 KiB, each readable at once; on a RecordReader (node's
//     record connections) in pieces of a record, and, when a Read is
//     blocked on the empty stream, straight into its slice, once the
//     record has arrived whole: so the bytes are copied once after
//     decryption, and a peer that stalls mid-frame never holds a Read past
//     its deadline. A Read whose slice is smaller than both the rest of
//     the frame and a piece (a length prefix read a byte at a time) gets
//     the frame buffered instead, so it is woken once per message, as
//     with go-yamux.
//   - The reader never waits for the write lock: its ping answers and
//     resets of refused streams go into the queue, written by a
//     short-lived flusher goroutine when nobody else is writing. When the
//     queue is full, ping answers are dropped and the reader waits for
//     room before queuing a reset, so a peer that sends without reading
//     is held back by TCP (go-yamux's reader likewise blocks on its send
//     queue). Window updates are sent by the Read that freed the window,
//     so a writer blocked on its window never depends on a blocked
//     goroutine.
//   - Per session: one goroutine, an accept queue grown on demand, a
//     keepalive timer (time.AfterFunc); per stream no goroutine, two
//     one-token channels, and deadline timers only while deadlines are
//     set.
//
// A data frame's announced length counts against the stream's window
// until its bytes arrive, so a window update never grants bytes in flight
// a second time: a stream never buffers more than the window it
// advertised and its memory span reserved.
//
// # Differences from go-yamux
//
// A stream the resource manager refuses memory for is reset with
// StreamResourceLimitExceeded instead of closing the whole session. A
// stream the peer resets before it is accepted leaves the accept queue at
// once (go-yamux keeps it there, taking an honest stream's place). As with
// go-yamux, OpenStream waits while AcceptBacklog streams opened here are
// not acknowledged. Data arriving after CloseRead is dropped rather than buffered. Stream
// deadline errors match os.ErrDeadlineExceeded. Concurrent Reads (and
// Writes) on one stream take turns, so one Write's bytes stay together.
// A Write begun without a deadline writes from the caller's slice, so a
// deadline set while its frame is on the wire takes effect when that
// write ends (at the latest at ConnectionWriteTimeout, which closes the
// session). After a failed write the reader gets 100 ms to find a go away
// the peer sent before closing, so the session ends with the peer's code.
// Without keepalive no round trip is measured, so windows are not tuned.
// Like go-yamux's, a small Write, and any Write with a deadline, may
// return before its frames are on the wire.
package yamux

package protocol

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-msgio/pbio"
	"google.golang.org/protobuf/proto"

	"github.com/cybertensor/cybertensor/protocol/pb"
)

// ClientConfig configures the query client.
type ClientConfig struct {
	// DefaultTimeout applies to requests without timeout_ms.
	DefaultTimeout time.Duration
	// MaxResponseSize bounds the total body accepted from one server.
	MaxResponseSize int
}

// DefaultClientConfig waits 12 s and accepts up to 64 MiB per answer.
func DefaultClientConfig() ClientConfig {
	return ClientConfig{DefaultTimeout: 12 * time.Second, MaxResponseSize: 64 << 20}
}

// Client sends queries from a host. Connections are kept by the host and
// reused across queries; each query is one stream.
type Client struct {
	h   host.Host
	cfg ClientConfig
}

// NewClient returns a client for h.
func NewClient(h host.Host, cfg ClientConfig) (*Client, error) {
	if cfg.DefaultTimeout <= 0 || cfg.MaxResponseSize <= 0 {
		return nil, errors.New("protocol: client config: DefaultTimeout and MaxResponseSize must be positive")
	}
	return &Client{h: h, cfg: cfg}, nil
}

// Result is one server's answer.
type Result struct {
	Peer    peer.ID
	Status  Status
	Message string
	Body    []byte
	// Latency is the time from sending to the last frame; Processing is
	// what the server reported.
	Latency    time.Duration
	Processing time.Duration
	Receipt    *pb.Receipt
	// Err says why a query failed on this side (unreachable peer, broken
	// stream, deadline), when it did.
	Err error
}

// Query sends req to every target concurrently and returns their results
// in target order. It returns by req's deadline whatever the targets do.
func (c *Client) Query(ctx context.Context, targets []peer.ID, req *pb.Request) []Result {
	out := make([]Result, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = c.Stream(ctx, t, req, nil)
		}()
	}
	wg.Wait()
	return out
}

// Stream sends req to one target. If onChunk is set, each body chunk is
// passed to it as it arrives (and not collected in Result.Body).
func (c *Client) Stream(ctx context.Context, target peer.ID, req *pb.Request, onChunk func([]byte) error) Result {
	res := Result{Peer: target}
	timeout := c.cfg.DefaultTimeout
	if req.TimeoutMs != 0 {
		timeout = time.Duration(req.TimeoutMs) * time.Millisecond
	} else {
		req = proto.Clone(req).(*pb.Request)
		req.TimeoutMs = uint32(timeout / time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	fail := func(status Status, err error) Result {
		res.Status, res.Err, res.Latency = status, err, time.Since(start)
		if ctx.Err() != nil {
			res.Status, res.Err = StatusTimeout, fmt.Errorf("deadline of %v passed: %w", timeout, err)
		}
		return res
	}
	st, err := c.h.NewStream(ctx, target, QueryID)
	if err != nil {
		return fail(StatusUnavailable, fmt.Errorf("opening a stream to %s: %w", target, err))
	}
	// A stalled peer must not hold us past the deadline: the deadline
	// bounds every read and write, and cancellation resets the stream.
	deadline, _ := ctx.Deadline()
	st.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	defer st.Close()

	if err := pbio.NewDelimitedWriter(st).WriteMsg(req); err != nil {
		return fail(StatusUnavailable, fmt.Errorf("sending the request: %w", err))
	}
	st.CloseWrite()
	r := pbio.NewDelimitedReader(st, MaxFrameSize)
	total := 0
	for {
		var frame pb.Response
		if err := r.ReadMsg(&frame); err != nil {
			return fail(StatusUnavailable, fmt.Errorf("reading the response: %w", err))
		}
		if len(frame.Body) > 0 {
			total += len(frame.Body)
			if total > c.cfg.MaxResponseSize {
				st.Reset()
				return fail(StatusBadRequest, fmt.Errorf("response larger than %d bytes", c.cfg.MaxResponseSize))
			}
			if onChunk != nil {
				if err := onChunk(frame.Body); err != nil {
					st.Reset()
					return fail(StatusInternal, err)
				}
			} else {
				res.Body = append(res.Body, frame.Body...)
			}
		}
		if !frame.More {
			res.Status, res.Message, res.Receipt = frame.Status, frame.Message, frame.Receipt
			res.Processing = time.Duration(frame.ProcessingUs) * time.Microsecond
			res.Latency = time.Since(start)
			return res
		}
	}
}

package yamux

import (
	"errors"
	"os"
)

// Errors of the protocol and of the session. A stream's reset by either
// side is a *network.StreamError, a go away a *network.ConnError; both
// match network.ErrReset with errors.Is.
var (
	// ErrInvalidVersion is a frame header with a version other than 0.
	ErrInvalidVersion = errors.New("yamux: invalid protocol version")
	// ErrInvalidMsgType is a frame header with an unknown type.
	ErrInvalidMsgType = errors.New("yamux: invalid message type")
	// ErrProtocol is any other violation of the protocol by the peer (a
	// duplicate stream, a stream ID of the wrong parity, more data than
	// the receive window allows); the session answers it with a go away
	// carrying the protocol-error code.
	ErrProtocol = errors.New("yamux: protocol error")
	// ErrStreamClosed is a write after CloseWrite.
	ErrStreamClosed = errors.New("yamux: stream closed for writing")
	// ErrStreamsExhausted is OpenStream once every stream ID was used.
	ErrStreamsExhausted = errors.New("yamux: stream IDs exhausted")
	// ErrKeepAliveTimeout closes a session whose peer neither answered a
	// ping nor sent anything else in time.
	ErrKeepAliveTimeout = &timeoutError{msg: "yamux: keepalive timeout"}
	// ErrConnectionWriteTimeout closes a session whose connection took
	// longer than Config.ConnectionWriteTimeout to accept a write.
	ErrConnectionWriteTimeout = &timeoutError{msg: "yamux: connection write timeout"}
	// ErrTimeout is a stream read or write past its deadline. It is a
	// net.Error whose Timeout is true and it matches
	// os.ErrDeadlineExceeded.
	ErrTimeout = &timeoutError{msg: "yamux: i/o deadline reached", deadline: true}
)

// timeoutError is a net.Error with Timeout true.
type timeoutError struct {
	msg      string
	deadline bool // matches os.ErrDeadlineExceeded
}

func (e *timeoutError) Error() string   { return e.msg }
func (e *timeoutError) Timeout() bool   { return true }
func (e *timeoutError) Temporary() bool { return e.deadline }
func (e *timeoutError) Is(target error) bool {
	return e.deadline && target == os.ErrDeadlineExceeded
}

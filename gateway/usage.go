package gateway

import "time"

// Authenticator authenticates API keys.
type Authenticator interface {
	// Authenticate returns the ID of the API key whose secret this is, or
	// false for an unknown or revoked key.
	Authenticate(secret string) (keyID string, ok bool)
}

// Limiter enforces each key's rate limit and daily quota.
type Limiter interface {
	// Allow charges cost units (requests or tokens, as the limiter counts)
	// to keyID at now. When it refuses, retryAfter says when a request of
	// that cost would pass.
	Allow(keyID string, cost int64, now time.Time) (ok bool, retryAfter time.Duration)
}

// Recorder keeps the usage of finished requests.
type Recorder interface {
	// Record durably appends one finished request's usage; when it
	// returns nil the entry survives a crash.
	Record(u Usage) error
}

// Usage is what one API request consumed and who served it.
type Usage struct {
	Time  time.Time `json:"time"`
	KeyID string    `json:"key_id"`
	// Model is the model the client named, e.g. "sn1/text.chat".
	Model   string `json:"model"`
	Netuid  uint16 `json:"netuid"`
	Synapse string `json:"synapse"`
	// Miner is the hotkey address of the miner that answered (the last
	// one tried), MinerPeer its peer ID; empty if none was reached.
	Miner     string `json:"miner,omitempty"`
	MinerPeer string `json:"miner_peer,omitempty"`
	RequestID string `json:"request_id"`
	// Status is the query protocol's final status ("OK", "TIMEOUT", …),
	// or "UNAVAILABLE" when no miner answered; HTTPStatus what the
	// client got.
	Status     string `json:"status"`
	HTTPStatus int    `json:"http_status"`
	// Tokens as the miner reported them (0 if it did not) and bytes as
	// the gateway counted them.
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	RequestBytes     int64 `json:"request_bytes"`
	ResponseBytes    int64 `json:"response_bytes"`
	// Latency is from the request's arrival to its last byte; FirstByte
	// to the first byte of the answer (0 if none).
	Latency   time.Duration `json:"latency"`
	FirstByte time.Duration `json:"first_byte"`
	// Attempts is how many miners were tried.
	Attempts int `json:"attempts"`
	// Receipt is the miner's signed receipt (protocol/SPEC.md §2.5) as an
	// encoded protocol Receipt, nil if it sent none.
	Receipt []byte `json:"receipt,omitempty"`
}

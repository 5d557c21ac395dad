// Package backend is what a miner answers queries with: a built-in
// retrieval model that needs no download (BM25 over knowledge passages), an
// OpenAI-compatible HTTP backend for any local model server, and an exec
// backend that talks JSON lines to a subprocess. TextGenerate adapts a
// Generator to the query protocol's text.generate synapse; the miner
// (package neuron) serves text.chat with a Chatter and text.embed with an
// Embedder, decoding their bodies with package subnet (which uses this
// package's Tokenize, hence ChatRequest here mirrors subnet's).
//
// # OpenAI-compatible backend
//
// OpenAI serves text.generate, text.chat (/v1/chat/completions) and
// text.embed (/v1/embeddings). It passes max_tokens, temperature, top_p,
// stop and seed through, asks for a stream with stream_options
// include_usage (or for a whole answer with NoStream), and reads whatever
// the server sends by its Content-Type: server-sent events token by token,
// or one JSON completion. Usage comes from the server. Everything it reads
// is bounded (MaxResponse bytes per call, MaxLine per stream line,
// MaxChunks events); a longer answer is refused, not cut. The API key is
// a bearer token, kept out of logs and errors. Every failure of the server
// wraps ErrUpstream (ErrUpstreamTimeout when it does not answer in time)
// and is counted by endpoint and kind (Failures, and
// cybertensor_backend_upstream_failures_total when the backend is
// registered as a Prometheus collector); the miner answers it INTERNAL (or
// TIMEOUT) and logs it, rate-limited, with its other backend failures. A
// caller that goes away is not counted.
//
// # Exec backend
//
// Exec talks JSON lines with ids to a program (ExecMessage), supervised by
// package hook: a call that misses its deadline fails alone (wrapping
// ErrUpstreamTimeout, so the miner answers TIMEOUT) and a fresh process
// serves the next; a crashed program is restarted after a backoff; an
// answer to another id is refused (ErrUpstream) and the process replaced;
// its stderr is logged under hook=backend, and its calls and failures are
// counted when ExecConfig.Metrics is set (NewExec).
//
// # Retrieval: a baseline
//
// Retrieval answers text.generate and text.chat (the last user message)
// with the best BM25 passage, and NOT_FOUND when none matches. For
// text.embed it has no model: HashEmbedding is a deterministic hashed
// bag-of-words vector (the Tokenize tokens, FNV-1a hashed with a sign into
// dimensions buckets, default 256, L2-normalized), a baseline to compare
// models against and to test with, not a semantic embedding. Its usage
// counts words as tokens.
//
// Package openaitest is a fake OpenAI-compatible server for tests.
package backend

// Package openaitest is a fake OpenAI-compatible model server for tests:
// an httptest server on 127.0.0.1 that answers deterministically, so a
// miner's OpenAI backend, a gateway in front of miners, or a reverse proxy
// used as a benchmark's anchor can be tested end to end without a model.
//
//	up := openaitest.New(openaitest.Config{Answer: "the answer is 42", APIKey: "secret"})
//	defer up.Close()
//	// point the backend at up.URL (the /v1 paths are below it)
//
// # Endpoints
//
//   - POST /v1/chat/completions: the answer is Config.Answer (or
//     Config.Reply's for the request), split into tokens after each space
//     (strings.SplitAfter(answer, " ")), cut at the first stop sequence and
//     at max_tokens tokens (then finish_reason is "length"). With
//     "stream": true it is sent as server-sent events, one chunk per token
//     (Config.TokenDelay before each), then a chunk with finish_reason,
//     then, if stream_options.include_usage, a chunk with usage and no
//     choices, then "data: [DONE]". Otherwise (or with Config.NoStreaming)
//     one chat.completion JSON object with usage.
//   - POST /v1/completions: the same for {"prompt": "…"} (choices[].text).
//   - POST /v1/embeddings: for each input, Config.Dimensions numbers (or
//     the request's dimensions) derived from SHA-256 of the input, of
//     Euclidean norm 1: the same input always gets the same vector.
//   - GET /v1/models: the model list (Config.Models).
//
// Usage: prompt_tokens counts the words (strings.Fields) of the messages'
// contents, the prompt or the inputs; completion_tokens the tokens sent.
//
// # Failures
//
// Config.FailStatus answers every request with that HTTP status and an
// OpenAI error body; DropAfter aborts a streamed answer's connection after
// that many tokens (the client sees the body end mid-stream, with no
// [DONE]); Stall makes every request hang until the client gives up or the
// server closes; Oversize pads the answer (and each stream chunk) with that
// many bytes of spaces. APIKey makes the server refuse (401) any request
// without "Authorization: Bearer <APIKey>". SetConfig changes the behaviour
// of a running server.
//
// # Counting
//
// Requests counts the requests to a path (all paths: ""); LastChat returns
// the body of the last chat completion request as the server decoded it,
// so a test can check what a backend passed through.
package openaitest

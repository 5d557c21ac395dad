// Package metering implements what the gateway server consumes from
// package gateway: API keys (Authenticator), per-key rate limits and daily
// quotas (Limiter) and the durable usage ledger with Prometheus metrics
// (Recorder).
//
// # Keys
//
// A KeyStore is a JSON file of API keys, written atomically (temporary
// file, fsync, rename, fsync of the directory) with mode 0600; a file
// readable by others is refused. A key's secret ("ct-" and the base64url
// of 32 random bytes) is shown once, when Add makes it; the file keeps its
// SHA-256 only. Authenticate compares the hash of what it is given with
// every stored hash in constant time.
//
// # Limits
//
// A Limiter keeps, per key, a token bucket (requests per second and a
// burst, as a generic cell rate algorithm on integer nanoseconds, so
// retry-after times are exact) and daily quotas of requests and tokens per
// UTC day. It is pure logic: the caller passes the time. Allow charges
// requests; ChargeTokens charges the tokens an answer used, after it.
//
// # Ledger
//
// A Ledger is an append-only bbolt database of gateway.Usage entries,
// keyed by a sequence number; each Record commits (and fsyncs) before it
// returns, so an entry it reported written survives kill -9. Entries are
// read back by key and time range and summed per key and per miner
// (requests, failures, tokens, bytes, latency percentiles). VerifyReceipt
// checks an entry's miner receipt against the miner's peer ID, so anyone
// holding the ledger can check what each miner signed.
//
// # Reading a ledger in use
//
// Only one process opens a ledger, so while the gateway runs, its reads
// are served by a UsageHandler on the operator's admin address: GET with
// key, since, until, as_of, entries and cursor parameters
// (ParseUsageQuery), answered with the summary, or with one page of the
// entries and the cursor of the next (UsageAnswer, read by
// DecodeUsageAnswer), only to requests carrying the admin token. A
// listing read in pages is pinned to the ledger's last sequence when it
// began (Query.AsOf): entries appended meanwhile are left to the next
// listing, so no entry is listed twice or missed, and the summary of the
// same AsOf counts exactly the entries listed.
package metering

package knowledge

import (
	"context"
	"io"

	"github.com/ipfs/go-cid"
)

// BodyCID computes the CID Publish gives a body (Object.Body) without
// storing anything: the root of its UnixFS DAG (256 KiB chunks, raw
// leaves, CIDv1, sha2-256). It returns the body's length too, and fails
// with ErrTooLarge once r passes max bytes.
func BodyCID(ctx context.Context, r io.Reader, max int64) (cid.Cid, int64, error) {
	return importBody(ctx, r, max, func(cid.Cid, []byte) error { return nil })
}

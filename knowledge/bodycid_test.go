package knowledge

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// BodyCID gives what Publish gives, for bodies of one block and of many.
func TestBodyCIDMatchesPublish(t *testing.T) {
	l := openTest(t, t.TempDir(), 1)
	for _, size := range []int{0, 1, ChunkSize, ChunkSize + 1, 3*ChunkSize + 17} {
		body := bytes.Repeat([]byte("cybertensor "), size/12+1)[:size]
		got, n, err := BodyCID(context.Background(), bytes.NewReader(body), 1<<30)
		if err != nil || n != int64(size) {
			t.Fatalf("%d bytes: %v, length %d", size, err, n)
		}
		obj := publish(t, l, body, Meta{Title: "x"})
		if !got.Equals(obj.Body) {
			t.Errorf("%d bytes: BodyCID %s, Publish %s", size, got, obj.Body)
		}
	}
	if _, _, err := BodyCID(context.Background(), bytes.NewReader(make([]byte, 100)), 99); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
}

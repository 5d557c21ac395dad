package knowledge

import (
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

type boltTx = bolt.Tx

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func nowForTest() time.Time { return time.UnixMilli(1_700_000_000_000) }

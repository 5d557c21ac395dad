package chainlink

import (
	"context"

	"github.com/cybertensor/cybertensor/chain"
)

// MetagraphQuery chooses a metagraph: a subnet, a height and columns.
type MetagraphQuery struct {
	Netuid uint16
	// Height is the block to answer at; 0 is the latest.
	Height uint64
	// Fields are the columns to fetch; 0 means chain.LiteMetagraphFields.
	Fields chain.MetagraphFields
}

// FieldsOrLite is q.Fields, or chain.LiteMetagraphFields if none are set.
func (q MetagraphQuery) FieldsOrLite() chain.MetagraphFields {
	if q.Fields&chain.AllMetagraphFields == 0 {
		return chain.LiteMetagraphFields
	}
	return q.Fields & chain.AllMetagraphFields
}

// MetagraphReader reads a metagraph of chosen columns at a pinned height
// in one query.
type MetagraphReader interface {
	// MetagraphAt returns the chosen columns (the others nil, Fields
	// naming the chosen ones) and Block, the height they were computed
	// at. It fails with ErrNotFound if the subnet did not exist then,
	// and with an error matching chain.ErrHeightNotKept (a
	// *chain.HeightError naming the heights answered) for a height the
	// chain does not keep.
	MetagraphAt(ctx context.Context, q MetagraphQuery) (*chain.Metagraph, error)
}

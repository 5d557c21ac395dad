package abci

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	abcitypes "github.com/cometbft/cometbft/abci/types"

	"github.com/cybertensor/cybertensor/chain"
)

// CodeHeightNotKept answers a query at a height the node does not keep;
// Value is the chain.HeightError as JSON (the oldest and latest heights
// it answers).
const CodeHeightNotKept = 3

// metagraphQuery answers the metagraph paths at req.Height (0 = latest):
//
//	/metagraph/<netuid>[/lite]           chain.Metagraph as JSON
//	/metagraph/<netuid>?fields=a,b,...   chain.EncodeMetagraph of the chosen columns
//
// fields takes chain.ParseMetagraphFields's names ("all", "lite", or
// columns); an empty list is lite. ok is false for other paths.
func (a *App) metagraphQuery(req *abcitypes.RequestQuery) (resp *abcitypes.ResponseQuery, ok bool) {
	path, rawQuery, hasQuery := strings.Cut(strings.TrimPrefix(req.Path, "/"), "?")
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if parts[0] != "metagraph" {
		return nil, false
	}
	resp = &abcitypes.ResponseQuery{Height: int64(a.db.State().Height())}
	fail := func(code uint32, err error) (*abcitypes.ResponseQuery, bool) {
		resp.Code, resp.Log = code, err.Error()
		return resp, true
	}
	bad := func(err error) (*abcitypes.ResponseQuery, bool) {
		return fail(CodeBadQuery, fmt.Errorf("query %q: %w", req.Path, err))
	}
	if len(parts) < 2 || len(parts) > 3 || (len(parts) == 3 && (parts[2] != "lite" || hasQuery)) {
		return bad(errors.New("want /metagraph/<netuid>[/lite] or /metagraph/<netuid>?fields=a,b,..."))
	}
	netuid, err := strconv.ParseUint(parts[1], 10, 16)
	if err != nil {
		return bad(err)
	}
	fields := chain.AllMetagraphFields
	if len(parts) == 3 {
		fields = chain.LiteMetagraphFields
	}
	if hasQuery {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return bad(err)
		}
		for k := range q {
			if k != "fields" {
				return bad(fmt.Errorf("unknown parameter %q (want fields)", k))
			}
		}
		if fields, err = chain.ParseMetagraphFields(q.Get("fields")); err != nil {
			return bad(err)
		}
	}
	if req.Height < 0 {
		return bad(fmt.Errorf("negative height %d", req.Height))
	}
	height := uint64(req.Height)
	if height == 0 {
		height = a.db.State().Height()
	}
	m, found, err := a.db.MetagraphAt(uint16(netuid), height, fields)
	var he *chain.HeightError
	switch {
	case errors.As(err, &he):
		resp.Value, _ = json.Marshal(he)
		return fail(CodeHeightNotKept, err)
	case err != nil:
		return fail(CodeBadQuery, err)
	case !found:
		return fail(CodeNotFound, fmt.Errorf("subnet %d not found at block %d", netuid, height))
	}
	resp.Height = int64(m.Block)
	if hasQuery {
		resp.Value, err = chain.EncodeMetagraph(m)
	} else {
		m.Fields = nil
		resp.Value, err = json.Marshal(m)
	}
	if err != nil {
		return fail(CodeBadQuery, err)
	}
	return resp, true
}

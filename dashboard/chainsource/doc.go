// Package chainsource is a dashboard.Source that follows a chain: any
// network's subnets and metagraphs, read over its RPC (or from the
// embedded chain), with each subnet's incentive and dividends over the
// epochs it has seen.
//
// A Source polls the chain's head; when a subnet's last epoch block moves
// it reads the metagraph again and adds a point to the subnet's history,
// and between epochs it rereads the metagraphs every RefreshEvery, so new
// registrations and stake show. What only the neurons know (roles,
// queries, heartbeats, knowledge) a chain cannot tell: its State is
// ChainOnly.
//
//	src, err := chainsource.New(ctx, client, chainsource.DefaultConfig())
//	if err != nil {
//		return err
//	}
//	defer src.Close()
//	srv, err := dashboard.Start(ctx, dcfg, src)
package chainsource

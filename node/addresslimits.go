package node

import (
	"math"
	"net/netip"
	"time"

	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/x/rate"
)

// go-libp2p's resource manager bounds what one address can do: at most 8
// connections at once from an IPv4 address or an IPv6 /56, and new
// connections from one at 0.2 a second after a burst of 16. It exempts
// the whole loopback range from both. A node exempts only 127.0.0.1 and
// ::1 — the addresses local tools and a localnet's neurons use — so the
// rest of 127.0.0.0/8 behaves as remote addresses do, and a test can play
// an attacker on the internet from 127.0.0.2 and up.

// exempt are the addresses without per-address limits.
var exempt = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}

// loopbackPrefixLimits lifts the concurrent-connection limit for the
// exempt addresses only.
func loopbackPrefixLimits() (v4, v6 []rcmgr.NetworkPrefixLimit) {
	for _, p := range exempt {
		l := rcmgr.NetworkPrefixLimit{Network: p, ConnCount: math.MaxInt}
		if p.Addr().Is4() {
			v4 = append(v4, l)
		} else {
			v6 = append(v6, l)
		}
	}
	return v4, v6
}

// connRateLimiter is go-libp2p's default rate limiter of new connections
// (rcmgr's newConnRateLimiter), with only the exempt addresses exempt.
func connRateLimiter() *rate.Limiter {
	var prefixes []rate.PrefixLimit
	for _, p := range exempt {
		prefixes = append(prefixes, rate.PrefixLimit{Prefix: p, Limit: rate.Limit{}})
	}
	const burst = 16 // go-libp2p: twice the 8 connections an address may hold
	return &rate.Limiter{
		NetworkPrefixLimits: prefixes,
		SubnetRateLimiter: rate.SubnetLimiter{
			IPv4SubnetLimits: []rate.SubnetLimit{{PrefixLength: 32, Limit: rate.Limit{RPS: 0.2, Burst: burst}}},
			IPv6SubnetLimits: []rate.SubnetLimit{
				{PrefixLength: 56, Limit: rate.Limit{RPS: 0.2, Burst: burst}},
				{PrefixLength: 48, Limit: rate.Limit{RPS: 0.5, Burst: 5 * burst}},
			},
			GracePeriod: time.Minute,
		},
	}
}

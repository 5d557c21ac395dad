package main

import (
	"fmt"
	"net"
	"net/url"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/spf13/cobra"
)

// addCheck makes cmd run check on its flags after parsing them and before
// its body: so a bad flag is a usage error before any password prompt,
// lock or connection. A command's checks run in the order they were
// added.
func addCheck(cmd *cobra.Command, check func() error) {
	prev := cmd.PreRunE
	cmd.PreRunE = func(cmd *cobra.Command, args []string) error {
		if prev != nil {
			if err := prev(cmd, args); err != nil {
				return err
			}
		}
		if err := check(); err != nil {
			return usageError(err)
		}
		return nil
	}
}

// checkChainURL accepts what comet.Dial does: http, https or tcp with a
// host.
func checkChainURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("--chain %q: %w", s, err)
	}
	switch u.Scheme {
	case "http", "https", "tcp":
	default:
		return fmt.Errorf("--chain %q: want an http://, https:// or tcp:// URL, e.g. %s", s, defaultChainURL)
	}
	if u.Host == "" {
		return fmt.Errorf("--chain %q: no host", s)
	}
	return nil
}

// checkPeers accepts full multiaddrs with /p2p/.
func checkPeers(flag string, addrs []string) error {
	for _, s := range addrs {
		if _, err := peer.AddrInfoFromString(s); err != nil {
			return fmt.Errorf("--%s %q: want a multiaddr with /p2p/PEER: %w", flag, s, err)
		}
	}
	return nil
}

// checkMultiaddrs accepts multiaddrs.
func checkMultiaddrs(flag string, addrs []string) error {
	for _, s := range addrs {
		if _, err := ma.NewMultiaddr(s); err != nil {
			return fmt.Errorf("--%s %q: %w", flag, s, err)
		}
	}
	return nil
}

// checkHostPort accepts HOST:PORT, or nothing.
func checkHostPort(flag, s string) error {
	if s == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(s); err != nil {
		return fmt.Errorf("--%s %q: want HOST:PORT, e.g. 127.0.0.1:9100: %w", flag, s, err)
	}
	return nil
}

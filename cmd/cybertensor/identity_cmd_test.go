package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/cybertensor/cybertensor/chain"
)

func TestIdentityFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    identityFlags
		want string // an error's text, "" for none
	}{
		{"name only", identityFlags{name: "alpha"}, ""},
		{"all at the limit", identityFlags{name: strings.Repeat("n", 64), url: strings.Repeat("u", 256), description: strings.Repeat("d", 1024)}, ""},
		{"newline in the description", identityFlags{name: "a", description: "one\ntwo"}, ""},
		{"remove", identityFlags{remove: true}, ""},
		{"nothing", identityFlags{}, "give --display-name"},
		{"url without a name", identityFlags{url: "https://x"}, "give --display-name"},
		{"remove with a name", identityFlags{remove: true, name: "a"}, "--remove takes no"},
		{"name 65 bytes", identityFlags{name: strings.Repeat("n", 65)}, "--display-name is 65 bytes: at most 64"},
		{"url 257 bytes", identityFlags{name: "a", url: strings.Repeat("u", 257)}, "--url is 257 bytes: at most 256"},
		{"description 1025 bytes", identityFlags{name: "a", description: strings.Repeat("d", 1025)}, "--description is 1025 bytes: at most 1024"},
		{"newline in the name", identityFlags{name: "a\nb"}, "the name has control character U+000A"},
		{"tab in the description", identityFlags{name: "a", description: "a\tb"}, "the description has control character U+0009"},
	} {
		id, err := tc.f.identity()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want == "" && id != (chain.Identity{Name: tc.f.name, URL: tc.f.url, Description: tc.f.description}):
			t.Errorf("%s: %+v", tc.name, id)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// wallet set-identity|get-identity and subnets set-identity|get-identity
// against a chain: text and JSON, the subnet's identity in subnets list
// and the metagraph, the owner's name in the full metagraph, refusals by
// the chain (a stranger, a coldkey without a registered hotkey) and bad
// flags refused before any password.
func TestIdentitiesAgainstAChain(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a CometBFT node")
	}
	c := newCLI(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	pw := writeFile(t, dir, "pw", "pw")
	c.ok("--home", home, "wallet", "new", "--wallet", "default", "--password-file", pw)
	c.ok("--home", home, "wallet", "new", "--wallet", "bob", "--password-file", pw)
	url := runningChain(t, c, home)
	std := []string{"--home", home, "--chain", url}
	key := append(std, "--password-file", pw)
	bob := append(key, "--wallet", "bob")
	cold := decode[infoJSON](t, c.ok("--home", home, "wallet", "show", "--json").stdout).Coldkey.Address
	bobCold := decode[infoJSON](t, c.ok("--home", home, "wallet", "show", "--wallet", "bob", "--json").stdout).Coldkey.Address
	c.ok(append([]string{"subnets", "create", "--name", "alpha"}, key...)...)

	// A coldkey with no registered hotkey may not set an identity.
	r := c.fail(exitFailure, append([]string{"wallet", "set-identity", "--display-name", "Early"}, key...)...)
	if !strings.Contains(r.stderr, "no_registered_hotkey") {
		t.Fatalf("unregistered: %s", r.stderr)
	}
	r = c.fail(exitFailure, append([]string{"wallet", "get-identity"}, std...)...)
	if !strings.Contains(r.stderr, "has no identity") {
		t.Fatalf("get before set: %s", r.stderr)
	}
	c.ok(append([]string{"subnets", "register", "--netuid", "1"}, key...)...)
	r = c.ok(append([]string{"wallet", "set-identity", "--display-name", "Default Labs", "--url", "https://default.example", "--description", "we run\nvalidators"}, key...)...)
	if !strings.Contains(r.stdout, "identity_set") {
		t.Fatalf("set: %s", r.stdout)
	}
	want := identityOut{Coldkey: cold, Identity: chain.Identity{Name: "Default Labs", URL: "https://default.example", Description: "we run\nvalidators"}}
	if got := decode[identityOut](t, c.ok(append([]string{"wallet", "get-identity", "--json"}, std...)...).stdout); got.Coldkey != want.Coldkey || got.Identity != want.Identity || got.Netuid != nil {
		t.Fatalf("get-identity --json: %+v", got)
	}
	r = c.ok(append([]string{"wallet", "get-identity", "--address", cold}, std...)...)
	if !regexpLine(r.stdout, "url", "https://default.example") || !regexpLine(r.stdout, "description", "we") || !strings.Contains(r.stdout, "validators") || !strings.Contains(r.stdout, "Default Labs") {
		t.Fatalf("get-identity --address: %s", r.stdout)
	}

	// The subnet: only its owner sets its identity.
	r = c.fail(exitFailure, append([]string{"subnets", "set-identity", "--netuid", "1", "--display-name", "Hijack"}, bob...)...)
	if !strings.Contains(r.stderr, "not_subnet_owner") {
		t.Fatalf("stranger: %s", r.stderr)
	}
	if r := c.fail(exitFailure, append([]string{"subnets", "get-identity", "--netuid", "1"}, std...)...); !strings.Contains(r.stderr, "subnet 1 has no identity") {
		t.Fatalf("subnet get before set: %s", r.stderr)
	}
	if r := c.fail(exitFailure, append([]string{"subnets", "get-identity", "--netuid", "9"}, std...)...); !strings.Contains(r.stderr, "there is no subnet 9") {
		t.Fatalf("missing subnet: %s", r.stderr)
	}
	c.ok(append([]string{"subnets", "set-identity", "--netuid", "1", "--display-name", "Alpha Vision", "--url", "https://alpha.example"}, key...)...)
	sub := decode[identityOut](t, c.ok(append([]string{"subnets", "get-identity", "--netuid", "1", "--json"}, std...)...).stdout)
	if sub.Netuid == nil || *sub.Netuid != 1 || sub.Name != "Alpha Vision" || sub.URL != "https://alpha.example" || sub.Coldkey != "" {
		t.Fatalf("subnets get-identity --json: %+v", sub)
	}
	if r := c.ok(append([]string{"subnets", "get-identity", "--netuid", "1"}, std...)...); !strings.Contains(r.stdout, "Alpha Vision") {
		t.Fatalf("subnets get-identity: %s", r.stdout)
	}

	// subnets list shows it, text and JSON.
	r = c.ok(append([]string{"subnets", "list"}, std...)...)
	if !strings.Contains(r.stdout, "IDENTITY") || !strings.Contains(r.stdout, "Alpha Vision") {
		t.Fatalf("subnets list: %s", r.stdout)
	}
	list := decode[[]chain.SubnetInfo](t, c.ok(append([]string{"subnets", "list", "--json"}, std...)...).stdout)
	if len(list) != 2 || list[0].Identity != nil || list[1].Identity == nil || list[1].Identity.Name != "Alpha Vision" {
		t.Fatalf("subnets list --json: %+v", list)
	}

	// The metagraph: the subnet's identity in its header, the owner's
	// name in the IDENTITY column of the full view (or --fields).
	r = c.ok(append([]string{"metagraph", "--netuid", "1", "--full"}, std...)...)
	if !strings.Contains(r.stdout, "identity: Alpha Vision <https://alpha.example>") || !strings.Contains(r.stdout, "IDENTITY") || !strings.Contains(r.stdout, "Default Labs") {
		t.Fatalf("metagraph: %s", r.stdout)
	}
	if r := c.ok(append([]string{"metagraph", "--netuid", "1", "--lite"}, std...)...); !strings.Contains(r.stdout, "identity: Alpha Vision") || strings.Contains(r.stdout, "Default Labs") {
		t.Fatalf("metagraph --lite: %s", r.stdout)
	}
	if r := c.ok(append([]string{"metagraph", "--netuid", "1", "--fields", "uid,identity_name"}, std...)...); !strings.Contains(r.stdout, "Default Labs") || strings.Contains(r.stdout, "STAKE") {
		t.Fatalf("metagraph --fields uid,identity_name: %s", r.stdout)
	}
	m := decode[chain.Metagraph](t, c.ok(append([]string{"metagraph", "--netuid", "1", "--full", "--json"}, std...)...).stdout)
	if m.SubnetIdentity == nil || m.SubnetIdentity.Name != "Alpha Vision" || len(m.IdentityNames) != 1 || m.IdentityNames[0] != "Default Labs" {
		t.Fatalf("metagraph --json: %+v %q", m.SubnetIdentity, m.IdentityNames)
	}

	// bob has no registered hotkey, so no identity; his removal of
	// nothing is accepted.
	r = c.fail(exitFailure, append([]string{"wallet", "set-identity", "--display-name", "Bob"}, bob...)...)
	if !strings.Contains(r.stderr, "no_registered_hotkey") {
		t.Fatalf("bob: %s", r.stderr)
	}
	c.ok(append([]string{"wallet", "set-identity", "--remove"}, bob...)...)
	if r := c.fail(exitFailure, append([]string{"wallet", "get-identity", "--address", bobCold}, std...)...); !strings.Contains(r.stderr, "has no identity") {
		t.Fatalf("bob's identity: %s", r.stderr)
	}

	// Removal.
	c.ok(append([]string{"subnets", "set-identity", "--netuid", "1", "--remove", "--json"}, key...)...)
	c.fail(exitFailure, append([]string{"subnets", "get-identity", "--netuid", "1"}, std...)...)
	c.ok(append([]string{"wallet", "set-identity", "--remove"}, key...)...)
	c.fail(exitFailure, append([]string{"wallet", "get-identity"}, std...)...)
	if r := c.ok(append([]string{"metagraph", "--netuid", "1"}, std...)...); strings.Contains(r.stdout, "identit") {
		t.Fatalf("metagraph after removals: %s", r.stdout)
	}

	// Bad flags are usage errors, found before any password.
	for _, bad := range [][]string{
		{"wallet", "set-identity"},
		{"wallet", "set-identity", "--display-name", strings.Repeat("n", 65)},
		{"wallet", "set-identity", "--display-name", "a", "--url", strings.Repeat("u", 257)},
		{"wallet", "set-identity", "--display-name", "a", "--description", strings.Repeat("d", 1025)},
		{"wallet", "set-identity", "--display-name", "a\tb"},
		{"wallet", "set-identity", "--display-name", "a", "--remove"},
		{"subnets", "set-identity", "--netuid", "1", "--display-name", strings.Repeat("n", 65)},
		{"subnets", "set-identity", "--netuid", "0", "--display-name", "root"},
	} {
		c.fail(exitUsage, append(bad, key...)...)
	}
	c.fail(exitUsage, append([]string{"wallet", "get-identity", "--address", "ct1nope"}, std...)...)
	c.fail(exitUsage, append([]string{"wallet", "get-identity", "--wallet", "bob", "--address", cold}, std...)...)
}

// Package dht provides peer discovery for neurons: a Kademlia DHT under the
// cybertensor protocol prefix (/cybertensor/kad/1.0.0) and subnet membership
// records.
package dht

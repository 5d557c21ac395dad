package main

import "github.com/cybertensor/cybertensor/chain"

// defaultEpoch is the epoch function of chains this binary runs.
var defaultEpoch chain.EpochFunc = nil

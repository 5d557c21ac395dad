package chain

import (
	"fmt"
	"sort"
)

// Hyperparams are one subnet's parameters. Defaults follow cybernet's.
type Hyperparams struct {
	Tempo                 uint64 `json:"tempo"`
	Kappa                 uint64 `json:"kappa"`
	Rho                   uint64 `json:"rho"`
	ImmunityPeriod        uint64 `json:"immunity_period"`
	ActivityCutoff        uint64 `json:"activity_cutoff"`
	MaxAllowedUIDs        uint64 `json:"max_allowed_uids"`
	MaxAllowedValidators  uint64 `json:"max_allowed_validators"`
	MinAllowedWeights     uint64 `json:"min_allowed_weights"`
	MaxWeightLimit        uint64 `json:"max_weight_limit"`
	WeightsVersionKey     uint64 `json:"weights_version_key"`
	WeightsRateLimit      uint64 `json:"weights_rate_limit"`
	ServingRateLimit      uint64 `json:"serving_rate_limit"`
	BondsMovingAverage    uint64 `json:"bonds_moving_average"`
	BondsPenalty          uint64 `json:"bonds_penalty"`
	AdjustmentInterval    uint64 `json:"adjustment_interval"`
	AdjustmentAlpha       uint64 `json:"adjustment_alpha"`
	TargetRegsPerInterval uint64 `json:"target_regs_per_interval"`
	MaxRegsPerBlock       uint64 `json:"max_regs_per_block"`
	Difficulty            uint64 `json:"difficulty"`
	MinDifficulty         uint64 `json:"min_difficulty"`
	MaxDifficulty         uint64 `json:"max_difficulty"`
	Burn                  uint64 `json:"burn"`
	MinBurn               uint64 `json:"min_burn"`
	MaxBurn               uint64 `json:"max_burn"`
	RegistrationAllowed   uint64 `json:"registration_allowed"`
	CommitRevealWeights   uint64 `json:"commit_reveal_weights_enabled"`
	CommitRevealInterval  uint64 `json:"commit_reveal_weights_interval"`
	// CommitmentRateLimit is the number of blocks a hotkey waits between
	// two commitments on the subnet (0: none).
	CommitmentRateLimit uint64 `json:"commitment_rate_limit"`
}

// DefaultHyperparams are cybernet's defaults for a new subnet.
func DefaultHyperparams() Hyperparams {
	return Hyperparams{
		Tempo:                 360,
		Kappa:                 32767,
		Rho:                   30,
		ImmunityPeriod:        14400,
		ActivityCutoff:        14400,
		MaxAllowedUIDs:        128,
		MaxAllowedValidators:  32,
		MinAllowedWeights:     1,
		MaxWeightLimit:        65535,
		WeightsVersionKey:     0,
		WeightsRateLimit:      100,
		ServingRateLimit:      50,
		BondsMovingAverage:    900_000,
		BondsPenalty:          65535,
		AdjustmentInterval:    360,
		AdjustmentAlpha:       58000,
		TargetRegsPerInterval: 1,
		MaxRegsPerBlock:       3,
		Difficulty:            10_000_000,
		MinDifficulty:         10_000_000,
		MaxDifficulty:         1<<64/4 - 1,
		Burn:                  1_000_000_000,
		MinBurn:               100_000_000,
		MaxBurn:               100_000_000_000,
		RegistrationAllowed:   1,
		CommitRevealWeights:   0,
		CommitRevealInterval:  1000,
		CommitmentRateLimit:   100,
	}
}

// LocalnetHyperparams are fast defaults for a local network: short tempo,
// no rate limits and cheap registration.
func LocalnetHyperparams() Hyperparams {
	h := DefaultHyperparams()
	h.Tempo = 20
	h.ImmunityPeriod = 100
	h.ActivityCutoff = 500
	h.WeightsRateLimit = 0
	h.ServingRateLimit = 0
	h.AdjustmentInterval = 100
	h.TargetRegsPerInterval = 64
	h.MaxRegsPerBlock = 64
	h.Difficulty = 1000
	h.MinDifficulty = 1
	h.Burn = 1_000_000
	h.MinBurn = 1_000
	h.CommitRevealInterval = 40
	h.CommitmentRateLimit = 0
	return h
}

// Who may set a hyperparameter.
const (
	byRoot = iota
	byOwnerOrRoot
)

type hyperparamRule struct {
	field    func(*Hyperparams) *uint64
	who      int
	min, max uint64
}

const u16Max = 65535

// hyperparamRules lists every settable hyperparameter with its bounds and
// who may set it, as cybernet's sudo_set_* calls allow.
var hyperparamRules = map[string]hyperparamRule{
	"tempo":                          {func(h *Hyperparams) *uint64 { return &h.Tempo }, byRoot, 1, u16Max},
	"kappa":                          {func(h *Hyperparams) *uint64 { return &h.Kappa }, byRoot, 0, u16Max},
	"rho":                            {func(h *Hyperparams) *uint64 { return &h.Rho }, byRoot, 0, u16Max},
	"immunity_period":                {func(h *Hyperparams) *uint64 { return &h.ImmunityPeriod }, byOwnerOrRoot, 0, u16Max},
	"activity_cutoff":                {func(h *Hyperparams) *uint64 { return &h.ActivityCutoff }, byOwnerOrRoot, 0, u16Max},
	"max_allowed_uids":               {func(h *Hyperparams) *uint64 { return &h.MaxAllowedUIDs }, byRoot, 1, 4096},
	"max_allowed_validators":         {func(h *Hyperparams) *uint64 { return &h.MaxAllowedValidators }, byOwnerOrRoot, 1, 4096},
	"min_allowed_weights":            {func(h *Hyperparams) *uint64 { return &h.MinAllowedWeights }, byOwnerOrRoot, 0, u16Max},
	"max_weight_limit":               {func(h *Hyperparams) *uint64 { return &h.MaxWeightLimit }, byOwnerOrRoot, 1, u16Max},
	"weights_version_key":            {func(h *Hyperparams) *uint64 { return &h.WeightsVersionKey }, byOwnerOrRoot, 0, 1<<63 - 1},
	"weights_rate_limit":             {func(h *Hyperparams) *uint64 { return &h.WeightsRateLimit }, byOwnerOrRoot, 0, 1 << 32},
	"serving_rate_limit":             {func(h *Hyperparams) *uint64 { return &h.ServingRateLimit }, byOwnerOrRoot, 0, 1 << 32},
	"bonds_moving_average":           {func(h *Hyperparams) *uint64 { return &h.BondsMovingAverage }, byRoot, 0, 1_000_000},
	"bonds_penalty":                  {func(h *Hyperparams) *uint64 { return &h.BondsPenalty }, byRoot, 0, u16Max},
	"adjustment_interval":            {func(h *Hyperparams) *uint64 { return &h.AdjustmentInterval }, byRoot, 1, u16Max},
	"adjustment_alpha":               {func(h *Hyperparams) *uint64 { return &h.AdjustmentAlpha }, byRoot, 0, 1<<64 - 1},
	"target_regs_per_interval":       {func(h *Hyperparams) *uint64 { return &h.TargetRegsPerInterval }, byRoot, 1, u16Max},
	"max_regs_per_block":             {func(h *Hyperparams) *uint64 { return &h.MaxRegsPerBlock }, byRoot, 1, u16Max},
	"difficulty":                     {func(h *Hyperparams) *uint64 { return &h.Difficulty }, byRoot, 1, 1<<64 - 1},
	"min_difficulty":                 {func(h *Hyperparams) *uint64 { return &h.MinDifficulty }, byRoot, 1, 1<<64 - 1},
	"max_difficulty":                 {func(h *Hyperparams) *uint64 { return &h.MaxDifficulty }, byRoot, 1, 1<<64 - 1},
	"burn":                           {func(h *Hyperparams) *uint64 { return &h.Burn }, byRoot, 0, 1<<63 - 1},
	"min_burn":                       {func(h *Hyperparams) *uint64 { return &h.MinBurn }, byRoot, 0, 1<<63 - 1},
	"max_burn":                       {func(h *Hyperparams) *uint64 { return &h.MaxBurn }, byRoot, 0, 1<<63 - 1},
	"registration_allowed":           {func(h *Hyperparams) *uint64 { return &h.RegistrationAllowed }, byRoot, 0, 1},
	"commit_reveal_weights_enabled":  {func(h *Hyperparams) *uint64 { return &h.CommitRevealWeights }, byOwnerOrRoot, 0, 1},
	"commit_reveal_weights_interval": {func(h *Hyperparams) *uint64 { return &h.CommitRevealInterval }, byOwnerOrRoot, 1, 1 << 32},
	"commitment_rate_limit":          {func(h *Hyperparams) *uint64 { return &h.CommitmentRateLimit }, byOwnerOrRoot, 0, 1 << 32},
}

// HyperparamNames lists the settable hyperparameters, sorted.
func HyperparamNames() []string {
	out := make([]string, 0, len(hyperparamRules))
	for k := range hyperparamRules {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// OwnerHyperparam reports whether a subnet's owner may set the named
// hyperparameter, and its bounds.
func OwnerHyperparam(name string) (min, max uint64, ok bool) {
	r, known := hyperparamRules[name]
	if !known || r.who != byOwnerOrRoot {
		return 0, 0, false
	}
	return r.min, r.max, true
}

// validate checks the relations between hyperparameters that single-value
// bounds cannot express.
func (h Hyperparams) validate() error {
	for _, name := range HyperparamNames() {
		r := hyperparamRules[name]
		v := *r.field(&h)
		if v < r.min || v > r.max {
			return fmt.Errorf("%s = %d outside %d..%d", name, v, r.min, r.max)
		}
	}
	switch {
	case h.MinBurn > h.MaxBurn:
		return fmt.Errorf("min_burn %d > max_burn %d", h.MinBurn, h.MaxBurn)
	case h.MinDifficulty > h.MaxDifficulty:
		return fmt.Errorf("min_difficulty %d > max_difficulty %d", h.MinDifficulty, h.MaxDifficulty)
	}
	return nil
}

// Globals are chain-wide parameters.
type Globals struct {
	// BlockEmission is minted per block and split across subnets.
	BlockEmission uint64 `json:"block_emission"`
	// DefaultTake is the delegate take (u16 share) when none is given.
	DefaultTake uint64 `json:"default_take"`
	// MaxTake bounds the take a delegate may choose.
	MaxTake uint64 `json:"max_take"`
	// TxRateLimit is the number of blocks between two staking or delegate
	// transactions of one coldkey (0: none).
	TxRateLimit uint64 `json:"tx_rate_limit"`
	// NetworkMinLockCost is the least a subnet registration locks.
	NetworkMinLockCost uint64 `json:"network_min_lock_cost"`
	// NetworkLockReductionInterval is the number of blocks over which the
	// doubled lock cost decays back.
	NetworkLockReductionInterval uint64 `json:"network_lock_reduction_interval"`
	// NetworkRateLimit is the number of blocks between subnet registrations.
	NetworkRateLimit uint64 `json:"network_rate_limit"`
	// SubnetLimit is the largest number of subnets, the root network excluded.
	SubnetLimit uint64 `json:"subnet_limit"`
	// MaxRootValidators bounds the root network's size.
	MaxRootValidators uint64 `json:"max_root_validators"`
	// RootTempo is the root epoch's tempo: how often emission is split.
	RootTempo uint64 `json:"root_tempo"`
	// FaucetAmount is paid by a Faucet transaction (0: faucet disabled).
	FaucetAmount uint64 `json:"faucet_amount"`
	// FaucetInterval is the number of blocks between two faucet payments
	// to one account.
	FaucetInterval uint64 `json:"faucet_interval"`
	// MinTake is the lowest take a delegate may set.
	MinTake uint64 `json:"min_take"`
	// TakeRateLimit is the number of blocks a delegate waits, after it
	// opened or last raised its take, before raising it again (0: none).
	// Lowering is never limited.
	TakeRateLimit uint64 `json:"take_rate_limit"`
	// HotkeySwapCost is burned by a SwapHotkey transaction: subtensor's
	// KeySwapCost (0.1 TAO).
	HotkeySwapCost uint64 `json:"hotkey_swap_cost"`
	// ChildrenCooldown is the number of blocks after which a set_children
	// applies, at that block's step (0 counts as 1: the next block).
	ChildrenCooldown uint64 `json:"children_cooldown"`
	// MaxChildkeyTake bounds a child hotkey's take (u16 share).
	MaxChildkeyTake uint64 `json:"max_childkey_take"`
	// ChildkeyTakeRateLimit is the number of blocks after setting a
	// childkey take before it may be raised (0: none).
	ChildkeyTakeRateLimit uint64 `json:"childkey_take_rate_limit"`
}

// DefaultTakeRateLimit is take_rate_limit's default: 30 days of 1 s
// blocks (the block time "chain init" sets), as subtensor's delegate take
// rate limit is 30 days of its 12 s blocks.
const DefaultTakeRateLimit = 30 * 24 * 60 * 60

// Child hotkey defaults, subtensor's durations in 1 s blocks: a change of
// children waits a day (subtensor: 7,200 blocks of 12 s) and a childkey
// take may be raised once per 30 days (subtensor: 216,000 blocks).
const (
	DefaultChildrenCooldown      = 24 * 60 * 60
	DefaultChildkeyTakeRateLimit = 30 * 24 * 60 * 60
)

// DefaultGlobals are cybernet's defaults, with 1e9 base units per block.
// The take bounds are subtensor's: default and maximum 18% (11796 of
// 65535), minimum 0.
func DefaultGlobals() Globals {
	return Globals{
		BlockEmission:                1_000_000_000,
		DefaultTake:                  11796,
		MaxTake:                      11796,
		TxRateLimit:                  0,
		NetworkMinLockCost:           10_000_000_000,
		NetworkLockReductionInterval: 7 * 14400,
		NetworkRateLimit:             0,
		SubnetLimit:                  16,
		MaxRootValidators:            64,
		RootTempo:                    1,
		FaucetAmount:                 0,
		FaucetInterval:               100,
		MinTake:                      0,
		TakeRateLimit:                DefaultTakeRateLimit,
		HotkeySwapCost:               100_000_000,
		ChildrenCooldown:             DefaultChildrenCooldown,
		MaxChildkeyTake:              11796,
		ChildkeyTakeRateLimit:        DefaultChildkeyTakeRateLimit,
	}
}

type globalRule struct {
	field    func(*Globals) *uint64
	min, max uint64
}

var globalRules = map[string]globalRule{
	"block_emission":                  {func(g *Globals) *uint64 { return &g.BlockEmission }, 0, 1 << 50},
	"default_take":                    {func(g *Globals) *uint64 { return &g.DefaultTake }, 0, u16Max},
	"max_take":                        {func(g *Globals) *uint64 { return &g.MaxTake }, 0, u16Max},
	"tx_rate_limit":                   {func(g *Globals) *uint64 { return &g.TxRateLimit }, 0, 1 << 32},
	"network_min_lock_cost":           {func(g *Globals) *uint64 { return &g.NetworkMinLockCost }, 0, 1 << 62},
	"network_lock_reduction_interval": {func(g *Globals) *uint64 { return &g.NetworkLockReductionInterval }, 1, 1 << 32},
	"network_rate_limit":              {func(g *Globals) *uint64 { return &g.NetworkRateLimit }, 0, 1 << 32},
	"subnet_limit":                    {func(g *Globals) *uint64 { return &g.SubnetLimit }, 1, 1024},
	"max_root_validators":             {func(g *Globals) *uint64 { return &g.MaxRootValidators }, 1, 4096},
	"root_tempo":                      {func(g *Globals) *uint64 { return &g.RootTempo }, 1, u16Max},
	"faucet_amount":                   {func(g *Globals) *uint64 { return &g.FaucetAmount }, 0, 1 << 50},
	"faucet_interval":                 {func(g *Globals) *uint64 { return &g.FaucetInterval }, 0, 1 << 32},
	"min_take":                        {func(g *Globals) *uint64 { return &g.MinTake }, 0, u16Max},
	"take_rate_limit":                 {func(g *Globals) *uint64 { return &g.TakeRateLimit }, 0, 1 << 32},
	"hotkey_swap_cost":                {func(g *Globals) *uint64 { return &g.HotkeySwapCost }, 0, 1 << 62},
	"children_cooldown":               {func(g *Globals) *uint64 { return &g.ChildrenCooldown }, 0, 1 << 32},
	"max_childkey_take":               {func(g *Globals) *uint64 { return &g.MaxChildkeyTake }, 0, u16Max},
	"childkey_take_rate_limit":        {func(g *Globals) *uint64 { return &g.ChildkeyTakeRateLimit }, 0, 1 << 32},
}

// GlobalNames lists the settable chain-wide parameters, sorted.
func GlobalNames() []string {
	out := make([]string, 0, len(globalRules))
	for k := range globalRules {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (g Globals) validate() error {
	for _, name := range GlobalNames() {
		r := globalRules[name]
		v := *r.field(&g)
		if v < r.min || v > r.max {
			return fmt.Errorf("%s = %d outside %d..%d", name, v, r.min, r.max)
		}
	}
	if g.DefaultTake > g.MaxTake {
		return fmt.Errorf("default_take %d > max_take %d", g.DefaultTake, g.MaxTake)
	}
	if g.MinTake > g.DefaultTake {
		return fmt.Errorf("min_take %d > default_take %d", g.MinTake, g.DefaultTake)
	}
	return nil
}

// HyperparamValue returns the named hyperparameter of h.
func HyperparamValue(h Hyperparams, name string) (uint64, bool) {
	r, ok := hyperparamRules[name]
	if !ok {
		return 0, false
	}
	return *r.field(&h), true
}

// SetHyperparam sets the named hyperparameter of h, within its bounds (as
// a genesis or a sudo_set_hyperparam would).
func SetHyperparam(h *Hyperparams, name string, v uint64) error {
	r, ok := hyperparamRules[name]
	if !ok {
		return fmt.Errorf("unknown hyperparameter %q", name)
	}
	if v < r.min || v > r.max {
		return fmt.Errorf("%s = %d outside %d..%d", name, v, r.min, r.max)
	}
	*r.field(h) = v
	return nil
}

package localnet

import (
	"github.com/cybertensor/cybertensor/backend"
	"github.com/cybertensor/cybertensor/neuron"
)

// fact is a passage of the built-in library with a question it answers.
type fact struct {
	id, text, question, answer string
}

// library is the knowledge the qa subnet's miners answer from and its
// validators know the answers to.
var library = []fact{
	{"yuma", "Yuma consensus computes a stake-weighted median of the validators' weights, the consensus, for every miner.", "What does Yuma consensus compute for every miner?", "stake-weighted median"},
	{"clip", "Weights a validator sets above the consensus are clipped down to it before ranks and trust are computed.", "What happens to weights above the consensus?", "clipped"},
	{"bonds", "Bonds are an exponential moving average of a validator's clipped weights; dividends flow along bonds.", "What are bonds an exponential moving average of?", "clipped weights"},
	{"tempo", "A subnet runs its epoch every tempo blocks; the localnet uses a short tempo so epochs pass in seconds.", "How often does a subnet run its epoch?", "every tempo blocks"},
	{"hotkey", "A neuron's libp2p identity is its hotkey: the peer ID is derived from the same secp256k1 key.", "What is a neuron's libp2p identity?", "its hotkey"},
	{"coldkey", "The coldkey holds funds and stake and is always encrypted on disk with argon2id and XChaCha20-Poly1305.", "Which key holds funds and stake?", "the coldkey"},
	{"receipt", "A miner signs a receipt over the hashes of the request and its answer so anyone can verify what it said.", "What does a miner sign so anyone can verify its answer?", "a receipt"},
	{"comet", "The chain can run under CometBFT, a Byzantine fault tolerant consensus engine, across many machines.", "Which consensus engine runs the chain across machines?", "CometBFT"},
	{"permit", "Only the top validators by stake receive a validator permit, which lets them set weights on other neurons.", "What lets a validator set weights on other neurons?", "validator permit"},
	{"emission", "Every block mints new tokens that the root network splits between subnets as emission.", "What does the root network split between subnets?", "emission"},
	{"immunity", "A newly registered neuron is protected from replacement during its immunity period.", "What protects a new neuron from replacement?", "immunity period"},
	{"fixed", "The epoch uses fixed-point arithmetic so every machine computes identical bytes.", "What arithmetic does the epoch use so every machine agrees?", "fixed-point"},
}

// Documents returns the library for a retrieval backend.
func Documents() []backend.Document {
	out := make([]backend.Document, len(library))
	for i, f := range library {
		out[i] = backend.Document{ID: f.id, Text: f.text}
	}
	return out
}

// Tasks returns the library's questions with their answers.
func Tasks() []neuron.Task {
	out := make([]neuron.Task, len(library))
	for i, f := range library {
		out[i] = neuron.Task{Prompt: f.question, Answer: f.answer}
	}
	return out
}

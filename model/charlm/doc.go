// Package charlm is the built-in, zero-setup model family of model subnets
// (#25): a byte-level n-gram language model with a pure-Go trainer and
// evaluator, and a deterministic, strictly decoded artifact format.
//
// Anyone can train one with no download: Train reads text, Encode writes
// the artifact a miner publishes as a knowledge object, Decode reads one
// back (from a peer: bounded and strict) and Loss scores a model on
// held-out text.
//
//	m, err := charlm.Train(ctx, file, charlm.DefaultTrainConfig())
//	artifact, err := m.Encode()
//	m2, err := charlm.Decode(artifact, charlm.DefaultLimits())
//	bits, err := m2.Loss(ctx, heldOut) // bits per byte
//
// # Alphabet and loss
//
// The alphabet is the 256 byte values, so a "character" is a byte (UTF-8
// text is modelled byte by byte). Loss is the mean cross-entropy in bits
// per byte, -(1/N) Σ log2 P(x_i | x_{i-n+1..i-1}), over the N bytes of the
// evaluation text; the first bytes of a text are predicted from the
// shorter history they have.
//
// # Smoothing: interpolated Witten–Bell
//
// For an order-n model, with h a context of k-1 bytes (k = 1..n), c(h,x)
// the count of the k-gram hx, c(h) = Σ_x c(h,x) and N1+(h•) the number of
// distinct bytes seen after h:
//
//	P_0(x)   = 1/256
//	P_k(x|h) = (c(h,x) + N1+(h•)·P_{k-1}(x|h')) / (c(h) + N1+(h•))   if c(h) > 0
//	P_k(x|h) = P_{k-1}(x|h')                                          if c(h) = 0
//
// where h' is h without its oldest byte (Witten and Bell 1991; Chen and
// Goodman 1998). Summed over x, the numerators give c(h) + N1+(h•),
// so every P_k is a proper distribution over the 256 bytes at every
// context, for any positive counts, including a hostile artifact's; no
// byte ever gets probability 0.
//
// # Bounded training: pruning
//
// Training counts every k-gram (k = 1..n) in hash tables. When the tables
// would hold more than TrainConfig.MaxEntries entries, pruning deletes
// every k-gram with k ≥ 2 whose count is at most t, for t = 1, 2, … until
// at most 3/4 of MaxEntries remain (unigrams are never pruned). Contexts'
// totals are computed from the surviving entries, so a pruned model is
// still a proper distribution; Card.PruneThreshold records the largest t
// used (0: never pruned). Counting takes about 40 bytes per entry; the
// trained (or decoded) model keeps, per order, each context's following
// bytes and their counts in arrays beside a map of contexts: 10 to 40
// bytes per entry, the fewer the more entries share a context.
//
// # Determinism
//
// The same bytes and TrainConfig give a byte-identical artifact on every
// CPU: counting is integer, pruning happens at the same byte of input
// whatever the reader's chunking, and Encode writes each table sorted by
// key (no map iteration order reaches the output, no float is stored).
// Loss sums the per-byte terms in text order in float64, so a given
// artifact and text give the same loss on a given platform; explicit
// float64 conversions keep the compiler from fusing the interpolation
// into fused multiply-adds, but math.Log2's own last bits may differ
// between architectures.
//
// # Artifact
//
// One file, all integers big-endian:
//
//	magic "CTCHARLM" (8) | format version u16 = 1 | order u8 (1..8) |
//	smoothing u8 (1 = interpolated Witten–Bell) | card length u32 | card |
//	for k = 1..order: entries u32, then each entry: the k-gram (k bytes,
//	oldest first) and its count u32 ≥ 1, strictly ascending by k-gram
//
// The card is: name, trainer version and data CID (each a u8 length and
// that many bytes; UTF-8, printable for the CID), training bytes u64,
// prune threshold u32. Decode refuses anything else with ErrBadArtifact
// (trailing bytes, unsorted or repeated k-grams, zero counts, unknown
// versions) and anything over its Limits with ErrTooLarge before
// allocating for it, so an accepted artifact re-encodes to the same bytes.
//
// WeightsHash is the SHA-256 of the artifact without its card (domain
// "charlm weights v1", order, smoothing and the tables): the same model
// published under different cards has one weights hash.
package charlm

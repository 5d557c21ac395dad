// gen-libsodium-vectors.mjs writes AEGIS-128L known-answer vectors made by
// libsodium (through libsodium-wrappers-sumo, pinned in package.json) to
// stdout as JSON, for TestLibsodiumVectors in ../libsodium_test.go:
//
//	cd node/aegis/testdata && npm ci && npm run gen
//
// (npm run gen is node gen-libsodium-vectors.mjs > libsodium-aegis128l.json.)
// Every input comes from a fixed seed, so a run reproduces the committed
// file byte for byte.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import sodium from 'libsodium-wrappers-sumo';

await sodium.ready;

const seed = 'cybertensor node/aegis libsodium AEGIS-128L vectors v1';

// The input stream: SHA-256(seed || uint64 big-endian i) for i = 0, 1, ...,
// read in order.
const stream = {
  counter: 0n,
  buf: Buffer.alloc(0),
  read(n) {
    while (this.buf.length < n) {
      const ctr = Buffer.alloc(8);
      ctr.writeBigUInt64BE(this.counter++);
      const block = createHash('sha256').update(seed).update(ctr).digest();
      this.buf = Buffer.concat([this.buf, block]);
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return Uint8Array.from(out);
  },
  // below returns a length in [0, n), from two bytes of the stream.
  below(n) {
    const b = this.read(2);
    return ((b[0] << 8) | b[1]) % n;
  },
};

const hex = (b) => Buffer.from(b).toString('hex');
const vectors = [];

// vector makes one vector: key, nonce, then the data and message of the
// given lengths, read from the stream in that order.
function vector(name, adLen, msgLen) {
  const key = stream.read(sodium.crypto_aead_aegis128l_KEYBYTES);
  const nonce = stream.read(sodium.crypto_aead_aegis128l_NPUBBYTES);
  const ad = stream.read(adLen);
  const msg = stream.read(msgLen);
  const { ciphertext: ct, mac: tag } = sodium.crypto_aead_aegis128l_encrypt_detached(msg, ad, null, nonce, key);
  const sealed = sodium.crypto_aead_aegis128l_encrypt(msg, ad, null, nonce, key);
  if (tag.length !== 32 || hex(sealed) !== hex(ct) + hex(tag)) {
    throw new Error(`${name}: detached and combined encryption differ`);
  }
  if (hex(sodium.crypto_aead_aegis128l_decrypt(null, sealed, ad, nonce, key)) !== hex(msg)) {
    throw new Error(`${name}: libsodium does not open its own output`);
  }
  sealed[sealed.length - 1] ^= 1;
  let refused = false;
  try {
    sodium.crypto_aead_aegis128l_decrypt(null, sealed, ad, nonce, key);
  } catch {
    refused = true;
  }
  if (!refused) {
    throw new Error(`${name}: libsodium accepted a changed tag`);
  }
  vectors.push({ name, key: hex(key), nonce: hex(nonce), ad: hex(ad), msg: hex(msg), ct: hex(ct), tag256: hex(tag) });
}

// Every message length to 300 (blocks are 32 bytes), data of 0-100 bytes.
for (let m = 0; m <= 300; m++) {
  vector(`msg ${m}`, stream.below(101), m);
}
// Every data length to 100, messages of 0-64 bytes.
for (let a = 0; a <= 100; a++) {
  vector(`ad ${a}`, a, stream.below(65));
}
// Both about block boundaries.
const edges = [0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65];
for (const a of edges) {
  for (const m of edges) {
    vector(`ad ${a} msg ${m}`, a, m);
  }
}
// Large messages and data.
for (const [a, m] of [[0, 1000], [13, 4096], [300, 65536 + 37], [1000, 0], [4096, 33], [16384 + 5, 100]]) {
  vector(`large ad ${a} msg ${m}`, a, m);
}

const version = (pkg) => JSON.parse(readFileSync(new URL(`./node_modules/${pkg}/package.json`, import.meta.url))).version;
const out = {
  about: 'AEGIS-128L known-answer vectors computed by libsodium, not by this package: ct and tag256 are crypto_aead_aegis128l_encrypt_detached(msg, ad, null, nonce, key), checked against crypto_aead_aegis128l_encrypt and crypto_aead_aegis128l_decrypt. libsodium has AEGIS-128L with a 256-bit tag only; the ciphertext does not depend on the tag length.',
  generator: 'node/aegis/testdata/gen-libsodium-vectors.mjs',
  command: 'cd node/aegis/testdata && npm ci && npm run gen',
  libsodium: sodium.sodium_version_string(),
  'libsodium-wrappers-sumo': version('libsodium-wrappers-sumo'),
  'libsodium-sumo': version('libsodium-sumo'),
  inputs: 'key, nonce, ad and msg of each vector in turn are read from the stream SHA-256(seed || uint64 big-endian i), i = 0, 1, ...; lengths as the generator chooses them',
  seed,
  vectors,
};

// One vector a line, so that a change shows as a readable diff.
const head = JSON.stringify({ ...out, vectors: undefined }, null, 2).replace(/\n}$/, '');
process.stdout.write(`${head},\n  "vectors": [\n${vectors.map((v) => '    ' + JSON.stringify(v)).join(',\n')}\n  ]\n}\n`);

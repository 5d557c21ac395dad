#!/usr/bin/env python3
"""The model-lm torch subnet's evaluator: eval.py ARTIFACT EVALSET.

ARTIFACT is a miner's model, a safetensors file of a TinyLM (below, written
by train.py); EVALSET the round's evaluation text. It prints one JSON line:
{"loss": L, "nats": N, "bytes": B}, the mean cross-entropy of the model on
the text's bytes in bits per byte (L, comparable with charlm's) and in nats
per byte (N), over B predicted bytes; or, for an artifact that is not a
model of this family (it does not parse, its tensors do not match its
configuration, its configuration is over the limits), {"refused": REASON},
which the validator scores 0 with that reason. Anything else (torch
missing, an unreadable evaluation set) exits non-zero: the evaluator's
fault, which drops the miner from the round without scoring it.

The model family is defined here, in the one file the subnet's spec locks
(train.py imports it): a decoder-only transformer over bytes. The artifact
is one safetensors file: float32 tensors of the model's state dict, with
the model's configuration in the header's __metadata__. It is read and
written here without the safetensors package (the format is an 8-byte
little-endian header length, a JSON header, then the tensors' bytes) and
never unpickled, so a miner's artifact cannot run code on a validator.
"""

import json
import math
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

VOCAB = 256  # bytes

# Bounds on the configuration a validator accepts: they bound the memory
# and time one evaluation takes whatever a miner commits.
LIMITS = {
    "d_model": (8, 512),
    "heads": (1, 16),
    "layers": (1, 8),
    "context": (8, 1024),
}
MAX_HEADER = 1 << 20  # bytes of JSON header


class BadArtifact(Exception):
    """The artifact is not a model of this family: the miner's fault."""


def check_config(cfg):
    """Returns the configuration as ints, or raises BadArtifact."""
    out = {}
    for key, (lo, hi) in LIMITS.items():
        try:
            v = int(cfg[key])
        except (KeyError, TypeError, ValueError):
            raise BadArtifact(f"config {key!r} missing or not an integer")
        if not lo <= v <= hi:
            raise BadArtifact(f"config {key} = {v}, want {lo}..{hi}")
        out[key] = v
    if out["d_model"] % out["heads"]:
        raise BadArtifact(f"d_model {out['d_model']} is not a multiple of heads {out['heads']}")
    return out


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.up = nn.Linear(d, 4 * d)
        self.down = nn.Linear(4 * d, d)

    def forward(self, x, mask):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(d // self.heads)
        att = att.masked_fill(mask[:t, :t], float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.proj(y)
        return x + self.down(F.gelu(self.up(self.ln2(x))))


class TinyLM(nn.Module):
    """A decoder-only transformer over bytes."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = check_config(cfg)
        d, ctx = self.cfg["d_model"], self.cfg["context"]
        self.tok = nn.Embedding(VOCAB, d)
        self.pos = nn.Embedding(ctx, d)
        self.blocks = nn.ModuleList(Block(d, self.cfg["heads"]) for _ in range(self.cfg["layers"]))
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, VOCAB, bias=False)
        self.register_buffer("mask", torch.triu(torch.ones(ctx, ctx, dtype=torch.bool), diagonal=1), persistent=False)

    def forward(self, idx):
        t = idx.shape[1]
        x = self.tok(idx) + self.pos(torch.arange(t, device=idx.device))
        for blk in self.blocks:
            x = blk(x, self.mask)
        return self.head(self.ln(x))


def save(model, path):
    """Writes model's state dict and configuration as a safetensors file."""
    tensors = sorted(model.state_dict().items())
    header = {"__metadata__": {k: str(v) for k, v in model.cfg.items()}}
    offset, blobs = 0, []
    for name, t in tensors:
        b = t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)  # the format pads the header to 8 bytes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load(path):
    """Reads a safetensors file written by save into a TinyLM, checking
    every tensor's name, type, shape and bytes; raises BadArtifact."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise BadArtifact("shorter than a safetensors header")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER or 8 + n > len(data):
        raise BadArtifact(f"header of {n} bytes does not fit")
    try:
        header = json.loads(data[8 : 8 + n])
    except (UnicodeDecodeError, ValueError) as e:
        raise BadArtifact(f"header is not JSON: {e}")
    if not isinstance(header, dict) or not isinstance(header.get("__metadata__"), dict):
        raise BadArtifact("header has no __metadata__ (the model's configuration)")
    model = TinyLM(header.pop("__metadata__"))
    want = model.state_dict()
    if set(header) != set(want):
        missing, extra = sorted(set(want) - set(header)), sorted(set(header) - set(want))
        raise BadArtifact(f"tensors do not match the configuration: missing {missing[:3]}, unexpected {extra[:3]}")
    body = memoryview(data)[8 + n :]
    state, spans = {}, []
    for name, info in header.items():
        if not isinstance(info, dict) or info.get("dtype") != "F32":
            raise BadArtifact(f"tensor {name}: want dtype F32")
        shape, offs = info.get("shape"), info.get("data_offsets")
        if shape != list(want[name].shape):
            raise BadArtifact(f"tensor {name}: shape {shape}, want {list(want[name].shape)}")
        if not (isinstance(offs, list) and len(offs) == 2 and all(isinstance(o, int) for o in offs)):
            raise BadArtifact(f"tensor {name}: bad data_offsets")
        begin, end = offs
        if not 0 <= begin <= end <= len(body) or end - begin != 4 * want[name].numel():
            raise BadArtifact(f"tensor {name}: data_offsets {offs} do not fit its shape or the file")
        spans.append((begin, end))
        t = torch.frombuffer(bytearray(body[begin:end]), dtype=torch.float32).reshape(shape) if end > begin else torch.zeros(shape)
        if not torch.isfinite(t).all():
            raise BadArtifact(f"tensor {name} holds a NaN or an infinity")
        state[name] = t
    spans.sort()
    for (_, e1), (b2, _) in zip(spans, spans[1:]):
        if b2 < e1:
            raise BadArtifact("tensors overlap")
    model.load_state_dict(state)
    model.eval()
    return model


def windows(data, context):
    """Yields (inputs, targets) over data in windows of context bytes: every
    byte after the first is predicted once, from up to context bytes
    before it."""
    for i in range(0, max(len(data) - 1, 0), context):
        chunk = data[i : i + context + 1]
        if len(chunk) < 2:
            break
        t = torch.tensor(list(chunk), dtype=torch.long)
        yield t[:-1].unsqueeze(0), t[1:].unsqueeze(0)


# Windows evaluated at once.
BATCH = 32


def loss(model, data):
    """Sum of the cross-entropy (nats) over data's predicted bytes, and
    their count."""
    ctx = model.cfg["context"]
    total, n = 0.0, 0
    xs, ys = [], []

    def flush():
        nonlocal total, n
        # Windows of one length batch together; the last may be shorter.
        for length in sorted({x.shape[1] for x in xs}):
            x = torch.cat([x for x in xs if x.shape[1] == length])
            y = torch.cat([y for y in ys if y.shape[1] == length])
            logits = model(x)
            total += F.cross_entropy(logits.reshape(-1, VOCAB), y.reshape(-1), reduction="sum").item()
            n += y.numel()
        xs.clear()
        ys.clear()

    with torch.no_grad():
        for x, y in windows(data, ctx):
            xs.append(x)
            ys.append(y)
            if len(xs) == BATCH:
                flush()
        flush()
    return total, n


def main(argv):
    if len(argv) != 3:
        print("usage: eval.py ARTIFACT EVALSET", file=sys.stderr)
        return 2
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    with open(argv[2], "rb") as f:
        data = f.read()
    try:
        model = load(argv[1])
    except BadArtifact as e:
        print(json.dumps({"refused": f"not a model-lm torch model: {e}"}))
        return 0
    total, n = loss(model, data)
    if n == 0:
        print("eval.py: the evaluation set has fewer than 2 bytes", file=sys.stderr)
        return 2
    nats = total / n
    print(json.dumps({"loss": nats / math.log(2), "nats": nats, "bytes": n}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

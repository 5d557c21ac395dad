#!/usr/bin/env python3
"""Train (or fine-tune) a model-lm torch model: a tiny byte-level
transformer (defined in eval.py) saved as a safetensors file that eval.py evaluates.

  python3 train.py --data corpus.txt --out my.safetensors --steps 300
  python3 train.py --data more.txt --init my.safetensors --out my2.safetensors   # fine-tune

It trains on random windows of the text with AdamW and prints the loss in
bits per byte as it goes; --seed makes a run repeatable on one machine.
"""

import argparse
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # no __pycache__ next to the spec
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import eval as lm  # noqa: E402  (the model family is defined in the evaluator)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="training text (read as bytes)")
    p.add_argument("--out", required=True, help="where to write the model (safetensors)")
    p.add_argument("--init", help="fine-tune this model (its configuration wins over the flags below)")
    p.add_argument("--max-bytes", type=int, default=0, help="train on the first N bytes only (0: all)")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--context", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()

    torch.manual_seed(a.seed)
    with open(a.data, "rb") as f:
        data = f.read()
    if a.max_bytes > 0:
        data = data[: a.max_bytes]
    if a.init:
        model = lm.load(a.init)
        model.train()
    else:
        model = lm.TinyLM({"d_model": a.d_model, "heads": a.heads, "layers": a.layers, "context": a.context})
    ctx = model.cfg["context"]
    if len(data) < ctx + 1:
        sys.exit(f"train.py: want at least {ctx + 1} bytes of text, have {len(data)}")
    text = torch.tensor(list(data), dtype=torch.long)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.01)
    for step in range(1, a.steps + 1):
        starts = torch.randint(0, len(text) - ctx, (a.batch,))
        x = torch.stack([text[s : s + ctx] for s in starts])
        y = torch.stack([text[s + 1 : s + ctx + 1] for s in starts])
        loss = F.cross_entropy(model(x).reshape(-1, lm.VOCAB), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == a.steps:
            print(f"step {step}: {loss.item() / math.log(2):.4f} bits per byte", file=sys.stderr)
    model.eval()
    tmp = a.out + ".part"
    lm.save(model, tmp)
    os.replace(tmp, a.out)
    n = sum(t.numel() for t in model.state_dict().values())
    print(f"wrote {a.out}: {n} parameters, {os.path.getsize(a.out)} bytes, config {model.cfg}")


if __name__ == "__main__":
    main()

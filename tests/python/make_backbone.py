"""Writes a small TorchScript text encoder for the backbone tests (tests/test_backbone.cpp).

Usage: /usr/bin/python3 make_backbone.py OUT.pt VOCAB DIM VARIANT

VARIANT picks the forward's signature and output, as model.backbone declares them:
  pooled     forward(ids [n, L] int64, mask [n, L] bool) -> [n, DIM]
  tokens     forward(ids, mask bool) -> token states [n, L, DIM]
  ids        forward(ids) -> [n, DIM] (padding is id 0)
  long_mask  forward(ids, mask int64) -> [n, DIM] (Hugging Face's attention_mask)
  tuple      forward(ids, mask bool) -> (pooled, states): not a tensor, for the error test
  detached   as pooled, its output detached from its weights: a trainable backbone that
             cannot train
One self-attention block (masked keys at -1e9, so a row without tokens stays finite), a
feed-forward block and a layer norm, with weights from torch.manual_seed(0): the same file on
every run. Only Debian's python3-torch is needed.
"""
import math
import sys
from typing import Tuple

import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, vocab: int, dim: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.ff = nn.Sequential(nn.Linear(dim, 2 * dim), nn.Tanh(), nn.Linear(2 * dim, dim))
        self.norm = nn.LayerNorm(dim)
        self.scale = 1.0 / math.sqrt(dim)

    def states(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids)
        scores = self.query(x).matmul(self.key(x).transpose(1, 2)) * self.scale
        scores = scores.masked_fill(mask.logical_not().unsqueeze(1), -1e9)
        x = x + torch.softmax(scores, -1).matmul(self.value(x))
        return self.norm(x + self.ff(x))

    def pooled(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.states(ids, mask)
        m = mask.unsqueeze(-1).to(x.dtype)
        return (x * m).sum(1) / m.sum(1).clamp(min=1.0)


class Pooled(Block):
    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.pooled(ids, mask)


class Tokens(Block):
    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.states(ids, mask)


class IdsOnly(Block):
    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.pooled(ids, ids.ne(0))


class LongMask(Block):
    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.pooled(ids, mask.ne(0))


class Both(Block):
    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.pooled(ids, mask), self.states(ids, mask)


class Detached(Block):
    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.pooled(ids, mask).detach()


VARIANTS = {"detached": Detached, "pooled": Pooled, "tokens": Tokens, "ids": IdsOnly, "long_mask": LongMask,
            "tuple": Both}


def main() -> None:
    out, vocab, dim, variant = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    torch.manual_seed(0)
    module = VARIANTS[variant](vocab, dim).eval()
    torch.jit.save(torch.jit.script(module), out)


if __name__ == "__main__":
    main()

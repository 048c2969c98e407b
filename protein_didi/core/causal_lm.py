"""A small causal transformer with ALiBi attention biases, shared by the protein and text judges.

Pre-norm blocks (causal self-attention + GELU MLP), tied input/output
embeddings, and ALiBi distance penalties (Press et al., 2022) instead of
positional embeddings, so a model trained on short windows scores longer
inputs. Domain-free: a domain supplies the sizes (any object with
``vocab_size``, ``hidden_size``, ``num_layers``, ``num_heads`` and
``intermediate_size``) and, optionally, the set of tokens a next token may be.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def alibi_slopes(num_heads: int) -> torch.Tensor:
    """Per-head distance penalties 2^(−8h/H) of Press et al. (2022)."""
    return torch.tensor([2.0 ** (-8.0 * (h + 1) / num_heads) for h in range(num_heads)])


class Block(nn.Module):
    """Pre-norm causal self-attention + GELU MLP."""

    def __init__(self, cfg: Any) -> None:
        super().__init__()
        self.num_heads = cfg.num_heads
        self.norm1 = nn.LayerNorm(cfg.hidden_size)
        self.qkv = nn.Linear(cfg.hidden_size, 3 * cfg.hidden_size)
        self.proj = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.norm2 = nn.LayerNorm(cfg.hidden_size)
        self.fc1 = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.fc2 = nn.Linear(cfg.intermediate_size, cfg.hidden_size)

    def forward(self, h: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, n, d = h.shape
        q, k, v = self.qkv(self.norm1(h)).view(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        h = h + self.proj(att.transpose(1, 2).reshape(b, n, d))
        return h + self.fc2(F.gelu(self.fc1(self.norm2(h))))


class CausalALiBiLM(nn.Module):
    """``log p(x_{i+1} | x_≤i)`` at every position; right padding needs no mask (causal attention never sees it).

    ``support``: optional (V,) bool of the tokens a next token may be; the others
    get zero probability. It is a non-persistent buffer, so the state dict holds
    only ``embed``, ``blocks.*`` and ``norm``.
    """

    def __init__(self, cfg: Any, support: torch.Tensor | None = None) -> None:
        super().__init__()
        if cfg.hidden_size % cfg.num_heads:
            raise ValueError(f"hidden_size {cfg.hidden_size} is not divisible by num_heads {cfg.num_heads}")
        self.config = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.num_layers))
        self.norm = nn.LayerNorm(cfg.hidden_size)
        self.register_buffer("slopes", alibi_slopes(cfg.num_heads), persistent=False)
        self.support: torch.Tensor | None
        self.register_buffer("support", support, persistent=False)
        nn.init.normal_(self.embed.weight, std=0.02)
        for block in self.blocks:  # GPT-2 style: shrink residual branches with depth
            for lin in (block.qkv, block.fc1):
                nn.init.normal_(lin.weight, std=0.02)
            for lin in (block.proj, block.fc2):
                nn.init.normal_(lin.weight, std=0.02 / math.sqrt(2 * cfg.num_layers))

    def attention_bias(self, n: int) -> torch.Tensor:
        """(H, n, n) additive mask: −slope·(i−j) for j ≤ i, −inf above the diagonal."""
        pos = torch.arange(n, device=self.slopes.device)
        dist = (pos[:, None] - pos[None, :]).float()
        return (-self.slopes[:, None, None] * dist).masked_fill(dist < 0, float("-inf"))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) tokens → (B, L, V) next-token log-probabilities (zero mass outside ``support``)."""
        h = self.embed(tokens)
        bias = self.attention_bias(tokens.shape[1]).to(h.dtype)
        for block in self.blocks:
            h = block(h, bias)
        logits = (self.norm(h) @ self.embed.weight.T).float()  # tied embeddings; fp32 softmax under autocast
        if self.support is not None:
            logits = logits.masked_fill(~self.support, float("-inf"))
        return logits.log_softmax(-1)

    def next_token_log_probs(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L−1) ``log p(tokens[:, i+1] | tokens[:, ≤i])``."""
        return self(tokens[:, :-1]).gather(-1, tokens[:, 1:].unsqueeze(-1)).squeeze(-1)

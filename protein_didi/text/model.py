"""The MDLM/DUO diffusion transformer (DiT) as a :class:`~protein_didi.core.denoiser.Denoiser`.

Same layers and parameter names as MDLM's ``models/dit.py`` (``vocab_embed``,
``sigma_map``, ``blocks.i.{norm1,attn_qkv,attn_out,norm2,mlp,adaLN_modulation}``,
``output_layer``), so an MDLM/DUO checkpoint's ``backbone.*`` tensors load as they
are. Each block modulates its bias-free layer norms with shift/scale/gate from
the noise embedding (adaLN-Zero: the modulation starts at zero) and applies
rotary position embeddings (GPT-NeoX half rotation) to queries and keys of
bidirectional attention. The noise input is MDLM's total noise
σ(t) = −log α_t of the log-linear schedule, or zeros when the model is not
time-conditioned (MDLM's released OWT model).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from protein_didi.core.denoiser import subs_log_probs


@dataclass(frozen=True)
class DiTConfig:
    """Size of the DiT; ``vocab_size`` counts the [MASK] token (GPT-2: 50257 + 1)."""

    vocab_size: int
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    cond_dim: int = 128
    mlp_ratio: int = 4
    dropout: float = 0.1
    time_conditioning: bool = True
    tie_word_embeddings: bool = False  # MDLM unties; the tiny CPU model ties to halve its checkpoint
    sigma_eps: float = 1e-3  # ε of the log-linear schedule used to turn t into σ(t)
    gate_init: float = 0.0  # initial residual gates: 0 is MDLM's adaLN-Zero, 1 starts as a plain pre-LN transformer

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads or (self.hidden_size // self.num_heads) % 2:
            raise ValueError(
                f"hidden_size {self.hidden_size} must split into {self.num_heads} heads of even size (rotary)"
            )
        if self.vocab_size < 2:
            raise ValueError(f"vocab_size must be ≥ 2, got {self.vocab_size}")

    def to_dict(self) -> dict:
        return asdict(self)


# Named sizes. ``mdlm-169m`` is the paper's OWT teacher (MDLM/DUO "small"): 12 layers, hidden 768, 12 heads.
ARCHITECTURES: dict[str, dict] = {
    "mdlm-169m": dict(hidden_size=768, num_layers=12, num_heads=12, cond_dim=128, dropout=0.1),
    # adaLN-Zero gates stay near zero for thousands of steps (the unigram plateau); a CPU budget needs open gates
    "tiny": dict(
        hidden_size=128, num_layers=4, num_heads=4, cond_dim=64, dropout=0.0, tie_word_embeddings=True, gate_init=1.0
    ),
    "test": dict(hidden_size=32, num_layers=2, num_heads=2, cond_dim=16, dropout=0.0),
}


def dit_config(arch: str, vocab_size: int, **overrides) -> DiTConfig:
    """A named architecture for a tokenizer of ``vocab_size`` tokens including [MASK]."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}")
    return replace(DiTConfig(vocab_size=vocab_size, **ARCHITECTURES[arch]), **overrides)


class LayerNorm(nn.Module):
    """MDLM's layer norm: weight only, no bias, computed in float32."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.float(), [self.dim]).to(x.dtype) * self.weight


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


class TimestepEmbedder(nn.Module):
    """Sinusoidal features of the noise level → MLP (DiT/GLIDE)."""

    def __init__(self, cond_dim: int, frequency_size: int = 256) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(frequency_size, cond_dim), nn.SiLU(), nn.Linear(cond_dim, cond_dim))
        self.frequency_size = frequency_size

    def forward(self, sigma: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Features computed in float32 (σ spans orders of magnitude), then cast to the network's ``dtype``."""
        half = self.frequency_size // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32, device=sigma.device) / half)
        args = sigma[:, None].float() * freqs[None]
        return self.mlp(torch.cat([torch.cos(args), torch.sin(args)], dim=-1).to(dtype))


class Rotary(nn.Module):
    """cos/sin tables of rotary embeddings for head size ``dim``, cached per sequence length."""

    def __init__(self, dim: int, base: float = 10_000.0) -> None:
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim)))
        self._cache: tuple[int, torch.device, torch.Tensor, torch.Tensor] | None = None

    def forward(self, seq_len: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if self._cache is None or self._cache[:2] != (seq_len, device):
            pos = torch.arange(seq_len, device=device, dtype=torch.float32)
            freqs = torch.outer(pos, self.inv_freq.to(device))
            emb = torch.cat([freqs, freqs], dim=-1)  # (L, head_dim)
            self._cache = (seq_len, device, emb.cos(), emb.sin())
        return self._cache[2], self._cache[3]


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (B, H, L, D) queries or keys by position (non-interleaved halves, as flash-attn's default)."""
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


class DDiTBlock(nn.Module):
    """adaLN-Zero transformer block: x + gate·Attn(mod(LN(x))), then x + gate·MLP(mod(LN(x)))."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        dim = cfg.hidden_size
        self.num_heads = cfg.num_heads
        self.dropout = cfg.dropout
        self.norm1 = LayerNorm(dim)
        self.attn_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.attn_out = nn.Linear(dim, dim, bias=False)
        self.norm2 = LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, cfg.mlp_ratio * dim), nn.GELU(approximate="tanh"), nn.Linear(cfg.mlp_ratio * dim, dim)
        )
        self.adaLN_modulation = nn.Linear(cfg.cond_dim, 6 * dim)
        nn.init.zeros_(self.adaLN_modulation.weight)
        nn.init.zeros_(self.adaLN_modulation.bias)
        with torch.no_grad():  # chunks: shift, scale, gate (attention), shift, scale, gate (MLP)
            self.adaLN_modulation.bias[2 * dim : 3 * dim] = cfg.gate_init
            self.adaLN_modulation.bias[5 * dim :] = cfg.gate_init

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaLN_modulation(c)[:, None].chunk(6, dim=2)
        h = modulate(self.norm1(x), shift1, scale1)
        q, k, v = self.attn_qkv(h).view(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        att = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d)
        x = x + gate1 * F.dropout(self.attn_out(att), self.dropout, self.training)
        h = self.mlp(modulate(self.norm2(x), shift2, scale2))
        return x + gate2 * F.dropout(h, self.dropout, self.training)


class EmbeddingLayer(nn.Module):
    """Token embedding as a bare (K, H) matrix, so soft (simplex) inputs embed as ``p @ embedding``."""

    def __init__(self, dim: int, vocab_size: int) -> None:
        super().__init__()
        self.embedding = nn.Parameter(torch.empty(vocab_size, dim))
        nn.init.kaiming_uniform_(self.embedding, a=math.sqrt(5))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.embedding[tokens]


class DDitFinalLayer(nn.Module):
    """adaLN-modulated norm, then the projection to vocabulary logits (zero-initialised, as MDLM)."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.norm_final = LayerNorm(cfg.hidden_size)
        self.linear = nn.Linear(cfg.hidden_size, cfg.vocab_size)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)
        self.adaLN_modulation = nn.Linear(cfg.cond_dim, 2 * cfg.hidden_size)
        nn.init.zeros_(self.adaLN_modulation.weight)
        nn.init.zeros_(self.adaLN_modulation.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor, tied: torch.Tensor | None = None) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c)[:, None].chunk(2, dim=2)
        h = modulate(self.norm_final(x), shift, scale)
        weight = self.linear.weight if tied is None else tied
        return F.linear(h, weight, self.linear.bias)


class DiT(nn.Module):
    """``log_probs = model(tokens, t)`` with MDLM's SUBS parameterisation over the tokenizer's vocabulary.

    ``features`` gives the last block's hidden states, which DiDi-Instruct's
    discriminator shares; ``soft_tokens`` (B, L, K) points of the simplex are
    embedded as ``soft_tokens @ embedding`` for gradient guidance (RGAS) and IDLM.
    """

    def __init__(self, config: DiTConfig, mask_id: int | None = None) -> None:
        super().__init__()
        self.config = config
        self.vocab_embed = EmbeddingLayer(config.hidden_size, config.vocab_size)
        self.sigma_map = TimestepEmbedder(config.cond_dim)
        self.rotary_emb = Rotary(config.hidden_size // config.num_heads)
        self.blocks = nn.ModuleList(DDiTBlock(config) for _ in range(config.num_layers))
        self.output_layer = DDitFinalLayer(config)
        if config.tie_word_embeddings:  # the output projection reads the embedding matrix instead of its own
            self.output_layer.linear.register_parameter("weight", None)
        self.mask_id: int = config.vocab_size - 1 if mask_id is None else mask_id
        self.vocab_size: int = config.vocab_size
        self.hidden_size: int = config.hidden_size
        self.time_conditioned: bool = config.time_conditioning

    def sigma(self, t: torch.Tensor | None, batch: int, device: torch.device) -> torch.Tensor:
        """MDLM's noise input σ(t) = −log α_t (log-linear schedule), or zeros when not time-conditioned."""
        if t is None or not self.config.time_conditioning:
            return torch.zeros(batch, device=device)
        t = t.to(device=device, dtype=torch.float32).expand(batch)
        return -torch.log1p(-(1.0 - self.config.sigma_eps) * t)

    def _trunk(
        self, tokens: torch.Tensor, t: torch.Tensor | None, soft_tokens: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if soft_tokens is None:
            x = self.vocab_embed(tokens)
        else:
            assert soft_tokens.shape == (*tokens.shape, self.vocab_size), (soft_tokens.shape, tokens.shape)
            x = soft_tokens.to(self.vocab_embed.embedding.dtype) @ self.vocab_embed.embedding
        dtype = self.vocab_embed.embedding.dtype  # bf16 under --precision bf16 (int8 keeps fp32 activations)
        c = F.silu(self.sigma_map(self.sigma(t, tokens.shape[0], tokens.device), dtype))
        cos, sin = (a.to(dtype) for a in self.rotary_emb(tokens.shape[1], tokens.device))  # phases computed in fp32
        for block in self.blocks:
            x = block(x, cos, sin, c)
        return x, c

    def features(
        self, tokens: torch.Tensor, t: torch.Tensor | None = None, soft_tokens: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, L, H) hidden states of the last block."""
        return self._trunk(tokens, t, soft_tokens)[0]

    def logits(
        self, tokens: torch.Tensor, t: torch.Tensor | None = None, soft_tokens: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, L, K) raw logits (MDLM's backbone output)."""
        x, c = self._trunk(tokens, t, soft_tokens)
        tied = self.vocab_embed.embedding if self.config.tie_word_embeddings else None
        return self.output_layer(x, c, tied)

    def forward(
        self, tokens: torch.Tensor, t: torch.Tensor | None = None, soft_tokens: torch.Tensor | None = None
    ) -> torch.Tensor:
        return subs_log_probs(self.logits(tokens, t, soft_tokens), tokens, self.mask_id)

    def weights(self) -> dict[str, torch.Tensor]:
        """The state dict without derived buffers (rotary frequencies): what checkpoints store."""
        return {k: v for k, v in self.state_dict().items() if not k.endswith("inv_freq")}

    def load_weights(self, state: dict[str, torch.Tensor]) -> None:
        """Inverse of :meth:`weights`; raises ``RuntimeError`` on missing or mismatched tensors."""
        own = self.weights()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing or unexpected:
            raise RuntimeError(f"missing {missing[:3]}, unexpected {unexpected[:3]}")
        self.load_state_dict(state, strict=False)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

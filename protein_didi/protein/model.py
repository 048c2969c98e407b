"""ESM-2 / DPLM masked language models as :class:`~protein_didi.core.denoiser.Denoiser` s.

DPLM is an ESM-2 masked LM trained with the masked-diffusion objective, so the
same ``transformers`` ``EsmForMaskedLM`` serves the real DPLM-150M (30 layers,
hidden 640) and our tiny CPU teacher. ESM takes no time input: the mask
pattern carries the noise level, hence ``time_conditioned = False``.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import EsmConfig, EsmForMaskedLM

from protein_didi.core.denoiser import subs_log_probs
from protein_didi.protein.alphabet import ALPHABET

# Named architectures. ``dplm-150m`` matches airkingbd/dplm_150m (ESM-2 t30 150M).
ARCHITECTURES: dict[str, dict] = {
    "tiny": dict(hidden_size=192, num_hidden_layers=4, num_attention_heads=4, intermediate_size=768),
    "test": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),
    "dplm-150m": dict(hidden_size=640, num_hidden_layers=30, num_attention_heads=20, intermediate_size=2560),
}


def esm_config(arch: str = "tiny", **overrides) -> EsmConfig:
    """An ``EsmConfig`` for a named architecture with ESM-2's alphabet and rotary positions."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}")
    kwargs = dict(
        vocab_size=ALPHABET.size,
        pad_token_id=ALPHABET.pad_id,
        mask_token_id=ALPHABET.mask_id,
        max_position_embeddings=1026,
        position_embedding_type="rotary",
        token_dropout=False,
        emb_layer_norm_before=False,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        layer_norm_eps=1e-5,
    )
    kwargs.update(ARCHITECTURES[arch])
    kwargs.update(overrides)
    return EsmConfig(**kwargs)


class EsmDenoiser(nn.Module):
    """``log_probs = model(tokens, t)`` over ESM's 33 tokens, with mass only on residue letters.

    The likelihood covers all 25 residue letters ESM knows (UniProt data holds
    X, U, …); samplers suppress the non-standard ones at generation time.

    ``features`` exposes the last hidden states so that a discriminator or an
    auxiliary model can share the backbone; ``soft_tokens`` (B, L, K) replaces
    hard tokens by points of the simplex for gradient-based guidance and IDLM.
    """

    time_conditioned = False

    def __init__(self, config: EsmConfig) -> None:
        super().__init__()
        if config.vocab_size != ALPHABET.size:
            raise ValueError(
                f"model vocabulary has {config.vocab_size} tokens but the ESM alphabet has {ALPHABET.size}; "
                "only ESM-2/DPLM checkpoints are supported"
            )
        self.config = config
        self.mlm = EsmForMaskedLM(config)
        self.mask_id: int = ALPHABET.mask_id
        self.vocab_size: int = config.vocab_size
        self.hidden_size: int = config.hidden_size
        self.register_buffer("allowed", ALPHABET.residue_mask.clone(), persistent=False)

    @classmethod
    def from_mlm(cls, mlm: EsmForMaskedLM) -> EsmDenoiser:
        model = cls.__new__(cls)
        nn.Module.__init__(model)
        model.config = mlm.config
        model.mlm = mlm
        model.mask_id = ALPHABET.mask_id
        model.vocab_size = mlm.config.vocab_size
        model.hidden_size = mlm.config.hidden_size
        model.register_buffer("allowed", ALPHABET.standard_ids.clone(), persistent=False)
        return model

    def _embed_soft(self, tokens: torch.Tensor, soft_tokens: torch.Tensor) -> torch.Tensor:
        """Embeddings of simplex points, equal to ESM's own for one-hot ``soft_tokens`` of ``tokens``.

        ESM's token dropout (``token_dropout=True`` in ESM-2/DPLM configs) zeroes the embedding of
        [MASK]. We zero the [MASK] *row* of the table rather than the masked positions' vectors: the
        value at a one-hot [MASK] is the same 0, but the gradient with respect to the other tokens'
        weights there stays W_k — RGAS tilts exactly at [MASK] positions and would otherwise get 0.
        """
        table = self.mlm.esm.embeddings.word_embeddings.weight
        if self.config.token_dropout:
            table = table.clone()
            table[self.mask_id] = 0.0
        emb = soft_tokens.to(table.dtype) @ table
        if self.config.token_dropout:  # replicate ESM's mask-dropout rescaling on the hard pattern
            is_mask = tokens == self.mask_id
            lengths = (tokens != ALPHABET.pad_id).sum(-1).clamp_min(1)
            observed = is_mask.sum(-1).float() / lengths
            emb = emb * (1 - 0.15 * 0.8) / (1 - observed).clamp_min(1e-3)[:, None, None]
        return emb.to(table.dtype)  # the fp32 rescale would otherwise promote a bf16 model's embeddings

    def features(
        self, tokens: torch.Tensor, t: torch.Tensor | None = None, soft_tokens: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, L, H) last hidden states; ``t`` is accepted for the interface and ignored."""
        attention_mask = (tokens != ALPHABET.pad_id).long()
        if soft_tokens is None:
            out = self.mlm.esm(input_ids=tokens, attention_mask=attention_mask)
        else:
            out = self.mlm.esm(inputs_embeds=self._embed_soft(tokens, soft_tokens), attention_mask=attention_mask)
        return out.last_hidden_state

    def forward(
        self, tokens: torch.Tensor, t: torch.Tensor | None = None, soft_tokens: torch.Tensor | None = None
    ) -> torch.Tensor:
        logits = self.mlm.lm_head(self.features(tokens, t, soft_tokens))
        return subs_log_probs(logits, tokens, self.mask_id, self.allowed)

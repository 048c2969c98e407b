"""Held-out NELBO of a protein denoiser, next to the unigram baseline it must beat."""

from __future__ import annotations

import numpy as np
import torch

from protein_didi.core.denoiser import Denoiser
from protein_didi.core.loss import nelbo_per_token
from protein_didi.core.schedule import NoiseSchedule
from protein_didi.protein.alphabet import ALPHABET
from protein_didi.protein.shards import ProteinShards


@torch.no_grad()
def heldout_nelbo(
    model: Denoiser,
    shards: ProteinShards,
    schedule: NoiseSchedule,
    max_residues: int = 128,
    num_sequences: int = 512,
    t_per_sequence: int = 4,
    batch_size: int = 32,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> float:
    """NELBO in nats per residue on the first residues of held-out sequences (t stratified; draws follow ``seed``)."""
    idx = np.random.default_rng(seed).permutation(len(shards))[:num_sequences]
    batches = (
        ALPHABET.pack([shards[int(i)][:max_residues] for i in idx[start : start + batch_size]]).to(device)
        for start in range(0, len(idx), batch_size)
    )
    gen = torch.Generator(device=device).manual_seed(seed)
    residues = lambda x: ~ALPHABET.special_positions(x)  # noqa: E731
    return nelbo_per_token(model, batches, residues, schedule, draws=t_per_sequence, generator=gen)


def unigram_cross_entropy(
    train_composition: dict[str, float],
    shards: ProteinShards,
    max_residues: int = 128,
    num_sequences: int = 512,
    seed: int = 0,
) -> float:
    """Nats per residue of held-out residues under the training amino-acid composition.

    This is exactly the NELBO of a denoiser that ignores context and predicts the
    composition everywhere (∫ω(t)(1−α_t)dt = 1), so it is the baseline to beat.
    """
    log_p = np.full(ALPHABET.size, np.log(1e-6))
    for aa, p in train_composition.items():
        log_p[ALPHABET.esm.get_idx(aa)] = np.log(max(p, 1e-6))
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(shards))[:num_sequences]
    ids = np.concatenate([shards[int(i)][:max_residues] for i in idx])
    return float(-log_p[ids].mean())

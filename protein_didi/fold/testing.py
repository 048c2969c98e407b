"""A tiny random-weight ESMFold for tests and benchmarks: the folding path runs without 8 GB of weights."""

from __future__ import annotations

import torch

from protein_didi.fold.esmfold import esmfold_config


def tiny_esmfold(seed: int = 0) -> torch.nn.Module:
    """A ~1.9M-parameter random-weight ``EsmForProteinFolding`` on the ESM alphabet.

    Its pLDDT values mean nothing about proteins; it exists so that the whole
    folding path (tokenisation, batching, pLDDT extraction, PDB writing, cache)
    runs in tests and benchmarks on machines without ESMFold's 8 GB of weights.
    """
    from transformers import EsmForProteinFolding

    config = esmfold_config(
        64,
        2,
        4,
        intermediate_size=128,
        esmfold={
            "lddt_head_hid_dim": 64,
            "trunk": {
                "num_blocks": 4,
                "sequence_state_dim": 128,
                "pairwise_state_dim": 64,
                "sequence_head_width": 32,
                "pairwise_head_width": 32,
                "max_recycles": 1,
                "chunk_size": None,
                "structure_module": {
                    "sequence_dim": 128,
                    "pairwise_dim": 64,
                    "ipa_dim": 16,
                    "resnet_dim": 64,
                    "num_heads_ipa": 4,
                    "num_blocks": 2,
                },
            },
        },
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = EsmForProteinFolding(config)
    return model.eval()

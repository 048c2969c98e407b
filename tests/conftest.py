"""Shared fixtures: tiny random ESM denoisers and synthetic prepared-data folders, all seeded."""

from __future__ import annotations

import importlib.util
import shutil

import numpy as np
import pytest
import torch

from protein_didi.core.checkpoint import save_json
from protein_didi.protein.alphabet import ALPHABET, STANDARD_AA
from protein_didi.protein.model import EsmDenoiser, esm_config
from protein_didi.protein.shards import SPLITS, ShardWriter

HAVE_ANARCI = importlib.util.find_spec("anarci") is not None and shutil.which("hmmscan") is not None
needs_anarci = pytest.mark.skipif(
    not HAVE_ANARCI, reason="anarci (pip install -e .[antibody]) or hmmscan (apt-get install hmmer) is not installed"
)
"""Antibody numbering needs both; every test that numbers chains carries this mark."""

torch.set_num_threads(1)


@pytest.fixture
def tiny_model() -> EsmDenoiser:
    torch.manual_seed(0)
    return EsmDenoiser(esm_config("test")).eval()


def write_synthetic_data(root, n_per_split: int = 40, seed: int = 0) -> None:
    """A prepared-data folder (shards + meta.json) of random sequences with a motif-rich composition."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(20) * 2)
    hist = np.zeros(1023, dtype=int)
    for split in SPLITS:
        writer = ShardWriter(root / split)
        with open(root / f"{split}.fasta", "w") as fh:
            for i in range(n_per_split):
                n = int(rng.integers(20, 60))
                seq = "".join(rng.choice(list(STANDARD_AA), size=n, p=probs))
                writer.add(ALPHABET.encode_residues(seq))
                fh.write(f">{split}{i}\n{seq}\n")
                if split == "train":
                    hist[n] += 1
        writer.flush()
    comp = {aa: float(p) for aa, p in zip(STANDARD_AA, probs, strict=True)}
    save_json(
        root / "meta.json",
        {
            "format": "protein_didi.shards/1",
            "alphabet": "esm-1b (33 tokens)",
            "source": "synthetic",
            "splits": {s: {"composition": comp, "length_histogram": hist.tolist()} for s in SPLITS},
        },
    )


@pytest.fixture
def synthetic_data(tmp_path):
    root = tmp_path / "data"
    write_synthetic_data(root)
    return root


@pytest.fixture
def same_state():
    """``same_state(a, b)`` asserts two (nested) training states are identical, tensor by tensor."""
    return assert_same_state


def assert_same_state(a, b, path: str = "state") -> None:
    """Recursively: tensors ``torch.equal``, everything else ``==`` (wall-clock entries skipped)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), f"{path} differs"
    elif isinstance(a, dict):
        keys = {k for k in a if k not in ("seconds", "elapsed_s")}
        assert keys == {k for k in b if k not in ("seconds", "elapsed_s")}, f"{path}: keys differ"
        for k in keys:
            assert_same_state(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{path}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_state(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def kill_at_step(monkeypatch: pytest.MonkeyPatch, task_cls: type, step: int):
    """Make ``task_cls.train_step`` raise ``KeyboardInterrupt`` at ``step`` (a run killed mid-way, for the resume
    tests); returns the original method so a test can put it back."""
    original = task_cls.train_step

    def crash(self, at):
        if at == step:
            raise KeyboardInterrupt("simulated kill")
        return original(self, at)

    monkeypatch.setattr(task_cls, "train_step", crash)
    return original


def make_tiny_bert(vocab: list[str], num_layers: int = 2, seed: int = 0):
    """A random BERT-family denoiser (hidden 32, 2 heads, 40 positions) on ``vocab``, seeded."""
    from transformers import BertConfig

    from protein_didi.protein.hf_mlm import BertDenoiser

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=num_layers, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=40,
    )  # fmt: skip
    return BertDenoiser(config, vocab).eval()

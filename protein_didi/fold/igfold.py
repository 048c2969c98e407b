"""IgFold as a folding backend: antibody Fv structures with a per-residue predicted RMSD (Å, lower = better).

IgFold (``pip install -e .[igfold]``; JHU academic licence, **non-commercial use
only**) ships four of its five ensemble models in its wheel. It reads AntiBERTy
embeddings, and its AntiBERTy (``antiberty>=1.0``) ships no weights, so the
weights come from :mod:`protein_didi.protein.antiberty_weights` — the same files
``--model antiberty`` uses — and are handed to AntiBERTy's runner explicitly
(no Hub access, no environment variables changed).

An input is a chain string: a bare sequence (one heavy chain) or
``H:EVQL…`` / ``L:DIQM…`` / ``H:EVQL…;L:DIQM…`` (a heavy/light pair, folded
together). Each folds with the ensemble; as in IgFold itself the model with
the lowest 90th-percentile predicted RMSD is kept, and no refinement or
renumbering is run (both need extra non-pip tools). Per-residue values are
IgFold's own B-factors: the RMS over the residue's N, CA, C, CB predictions.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import re
from pathlib import Path

import numpy as np
import torch

from protein_didi.core.device import resolve_device
from protein_didi.fold.backend import FoldBackend
from protein_didi.fold.result import FoldingUnavailable, FoldResult
from protein_didi.protein.antiberty_weights import AntibertyWeightsMissing, resolve_antiberty_weights

MAX_CHAIN = 510  # AntiBERTy's positional limit (512 tokens with [CLS]/[SEP])
NUM_MODELS = 4  # the ensemble members shipped in the igfold 1.0.1 wheel
MODELS_ENV = "PROTEIN_DIDI_IGFOLD_MODELS"
STANDARD = frozenset("ACDEFGHIKLMNPQRSTVWY")
CHAIN_ID = re.compile(r"^[HL]$")
INSTALL = "pip install -e .[igfold] (IgFold: JHU academic licence, non-commercial use only)"


def igfold_missing() -> str | None:
    """Why IgFold cannot run here (package missing), or None; found without importing it."""
    if importlib.util.find_spec("igfold") is None:
        return f"the igfold package is not installed; {INSTALL}"
    return None


def default_num_models() -> int:
    """``$PROTEIN_DIDI_IGFOLD_MODELS`` (1–4; fewer members fold faster on a slow CPU), else all four."""
    text = os.environ.get(MODELS_ENV, "").strip()
    if not text:
        return NUM_MODELS
    if not text.isdigit() or not 1 <= int(text) <= NUM_MODELS:
        raise ValueError(f"{MODELS_ENV}={text!r} must be a number of IgFold models from 1 to {NUM_MODELS}")
    return int(text)


def default_batch_residues(device: torch.device) -> int:
    """Residues per batch: one chain at a time on CPU (batching two 120-residue chains saved nothing: 25.9 s vs
    26.7 s), wide batches on a GPU."""
    return 2048 if device.type == "cuda" else 1


def encode_chains(chains: dict[str, str]) -> str:
    """``{"H": "EVQL…", "L": "DIQM…"}`` → ``"H:EVQL…;L:DIQM…"``, the form the cache stores."""
    return ";".join(f"{chain}:{seq}" for chain, seq in chains.items())


def decode_chains(text: str) -> dict[str, str]:
    """The inverse of :func:`encode_chains`; a bare sequence is one heavy chain."""
    if ":" not in text:
        return {"H": text}
    chains: dict[str, str] = {}
    for part in text.split(";"):
        chain, _, seq = part.partition(":")
        chains[chain.strip().upper()] = seq
    return chains


def check_chain(seq: str) -> str | None:
    """Why IgFold cannot fold this chain (one line), or None."""
    if not seq:
        return "empty chain"
    bad = next((i for i, c in enumerate(seq) if c not in STANDARD), None)
    if bad is not None:
        return f"has {seq[bad]!r} at position {bad + 1}; IgFold takes the 20 standard amino acids only"
    if len(seq) > MAX_CHAIN:
        return f"{len(seq)} residues, longer than IgFold's {MAX_CHAIN} per chain (AntiBERTy's limit)"
    return None


class IgFold(FoldBackend):
    """IgFold with the shared batching, cache and fan-out; ``fold`` takes chain strings (see the module docstring)."""

    score = "prmsd"
    name = "IgFold"

    def __init__(
        self,
        device: str | torch.device = "auto",
        cache_path: str | Path | None = None,
        *,
        num_models: int | None = None,
        max_batch_residues: int | None = None,
    ) -> None:
        missing = igfold_missing()
        if missing is not None:
            raise FoldingUnavailable(f"IgFold unavailable: {missing}")
        resolved = resolve_device(device) if isinstance(device, str) else device
        super().__init__(resolved, cache_path, max_batch_residues or default_batch_residues(resolved))
        self.num_models = num_models or default_num_models()
        if not 1 <= self.num_models <= NUM_MODELS:
            raise ValueError(f"IgFold num_models must be 1–{NUM_MODELS}, got {self.num_models}")
        try:
            self.weights = resolve_antiberty_weights()
        except AntibertyWeightsMissing as err:
            raise FoldingUnavailable(f"IgFold unavailable: {err}") from None
        self.model_id = self._model_id()
        self._antiberty = None
        self._models: list[torch.nn.Module] = []

    def _model_id(self) -> str:
        """igfold version, ensemble size and the AntiBERTy weights (config + size): folds of other weights differ."""
        version = importlib.metadata.version("igfold")
        weights = next(
            p for p in (self.weights.folder / n for n in ("model.safetensors", "pytorch_model.bin")) if p.is_file()
        )
        h = hashlib.sha256((self.weights.folder / "config.json").read_bytes())
        h.update(str(weights.stat().st_size).encode())
        return f"igfold-{version}:models={self.num_models}|antiberty={h.hexdigest()[:12]}"

    def validate(self, seq: str, where: str) -> str:
        text = "".join(str(seq).split()).upper()
        chains = decode_chains(text)
        if ":" in text and (text.count(":") > 2 or text.count(":") != len(chains)):
            raise ValueError(f"{where}: IgFold folds one chain or one H/L pair; write H:SEQ;L:SEQ")
        for chain, residues in chains.items():
            if not CHAIN_ID.match(chain):
                raise ValueError(f"{where}: chain {chain!r} is not H or L; write H:SEQ, L:SEQ or H:SEQ;L:SEQ")
            reason = check_chain(residues)
            if reason is not None:
                raise ValueError(f"{where}: chain {chain} {reason}")
        if len(chains) > 2 or len(set(chains)) != len(chains):
            raise ValueError(f"{where}: IgFold folds one chain or one H/L pair; write H:SEQ;L:SEQ")
        return encode_chains(chains)

    def load(self) -> IgFold:
        """Load the ensemble and AntiBERTy now; :class:`FoldingUnavailable` with the fix if anything is missing."""
        if self._models:
            return self
        try:
            from antiberty import AntiBERTyRunner
            from igfold.utils.checkpoint import find_weights, load_model
        except ImportError as err:
            raise FoldingUnavailable(f"IgFold unavailable ({err}); {INSTALL}") from None
        try:
            self._antiberty = AntiBERTyRunner(device=self.device, checkpoint_path=str(self.weights.folder))
        except TypeError:  # antiberty 0.1.x: no device argument; IgFold 1.0 needs antiberty>=1.0
            raise FoldingUnavailable(f"IgFold needs antiberty>=1.0 (0.1.x is installed); {INSTALL}") from None
        self._models = [load_model(path, device=self.device) for path in find_weights(None, num_models=self.num_models)]
        return self

    def _fold_batch(self, seqs: list[str]) -> list[FoldResult]:
        from igfold.utils.folding import predict_structures
        from igfold.utils.pdb import build_structure, structure_to_pdb_string

        chains = [decode_chains(s) for s in seqs]
        outputs = predict_structures(self._antiberty, self._models, chains, batch_size=len(chains))
        results = []
        for key, chain_dict, out in zip(seqs, chains, outputs, strict=True):
            per_residue = out.prmsd.detach().float().square().mean(dim=-1).sqrt().squeeze(0).cpu()
            full = "".join(chain_dict.values())
            ends = np.cumsum([len(s) for s in chain_dict.values()]).tolist()
            structure = build_structure(out.coords.squeeze(0), full, list(chain_dict), ends, bfactor=per_residue)
            values = per_residue.numpy().astype(np.float32)
            results.append(FoldResult(key, float(values.mean()), values, structure_to_pdb_string(structure), "prmsd"))
        return results

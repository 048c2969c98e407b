"""IgFold as a folding backend: antibody Fv structures with a per-residue predicted RMSD (Å, lower = better).

IgFold (``pip install -e .[igfold]``; JHU academic licence, **non-commercial use
only**) ships four of its five ensemble models in its wheel. It reads AntiBERTy
embeddings, and its AntiBERTy (``antiberty>=1.0``) ships no weights, so the
weights come from :mod:`protein_didi.protein.antiberty_weights` — the same files
``--model antiberty`` uses — and are handed to AntiBERTy's runner explicitly
(no Hub access, no environment variables changed).

An input is a chain string: a bare sequence (one heavy chain) or
``H:EVQL…`` / ``L:DIQM…`` / ``H:EVQL…;L:DIQM…`` (a heavy/light pair, folded
together). Each folds with the ensemble; as in IgFold itself every member's
structure gets IgFold's 80-step gradient refinement and the member with the
lowest 90th-percentile predicted RMSD is kept; no OpenMM/PyRosetta refinement
or renumbering is run (both need extra non-pip tools). Per-residue values are
IgFold's own B-factors: the RMS over the residue's N, CA, C, CB predictions.

Speed (where a fold's time went, measured on 2 shared cores): loading is once
per folder (0.7 s); per 120-residue chain each member's forward pass takes
~1.1 s and its gradient refinement ~1.1 s on one thread, so :func:`predict_one`
refines the four members' frames together as one batch of four (Adam is
elementwise and the losses are per member, so the result is the same as four
separate refinements). Folding runs on :func:`default_threads` torch threads
(one on CPU): with two threads on two cores that other jobs also use, OpenMP's
spinning threads made a chain ~10× slower (136 s vs 13 s), so parallelism comes
from worker processes (:mod:`protein_didi.fold.fanout`), not threads.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from protein_didi.core.device import resolve_device
from protein_didi.fold.backend import FoldBackend
from protein_didi.fold.result import FoldingUnavailable, FoldResult
from protein_didi.protein.antiberty_weights import AntibertyWeightsMissing, resolve_antiberty_weights

MAX_CHAIN = 510  # AntiBERTy's positional limit (512 tokens with [CLS]/[SEP])
NUM_MODELS = 4  # the ensemble members shipped in the igfold 1.0.1 wheel
MODELS_ENV = "PROTEIN_DIDI_IGFOLD_MODELS"
THREADS_ENV = "PROTEIN_DIDI_IGFOLD_THREADS"
REFINE_STEPS = 80  # IgFold's gradient_refine default
STANDARD = frozenset("ACDEFGHIKLMNPQRSTVWY")
CHAIN_ID = re.compile(r"^[HL]$")
INSTALL = "pip install -e .[igfold] (IgFold: JHU academic licence, non-commercial use only)"


def igfold_missing() -> str | None:
    """Why IgFold cannot run here (package missing), or None; found without importing it."""
    if importlib.util.find_spec("igfold") is None:
        return f"the igfold package is not installed; {INSTALL}"
    return None


def igfold_version() -> str:
    return importlib.metadata.version("igfold")


def shared_igfold_cache() -> Path:
    """This machine's IgFold fold cache, one per installed IgFold version (outside any report's ``--out``; see
    :func:`~protein_didi.fold.cache.shared_cache_path`); entries are keyed by chains + ensemble + weights."""
    from protein_didi.fold.cache import shared_cache_path

    return shared_cache_path(f"igfold-{igfold_version()}")


def default_num_models() -> int:
    """``$PROTEIN_DIDI_IGFOLD_MODELS`` (1–4; fewer members fold faster on a slow CPU), else all four."""
    text = os.environ.get(MODELS_ENV, "").strip()
    if not text:
        return NUM_MODELS
    if not text.isdigit() or not 1 <= int(text) <= NUM_MODELS:
        raise ValueError(f"{MODELS_ENV}={text!r} must be a number of IgFold models from 1 to {NUM_MODELS}")
    return int(text)


def default_threads(device: torch.device) -> int | None:
    """Torch threads while folding: ``$PROTEIN_DIDI_IGFOLD_THREADS``, else 1 on CPU (see the module docstring),
    else None (leave torch's setting alone)."""
    text = os.environ.get(THREADS_ENV, "").strip()
    if text:
        if not text.isdigit() or int(text) < 1:
            raise ValueError(f"{THREADS_ENV}={text!r} must be a number of threads, 1 or more")
        return int(text)
    return 1 if device.type == "cpu" else None


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block on ``n`` intra-op threads (None: unchanged), then restore the caller's setting."""
    before = torch.get_num_threads()
    if n is not None and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def _cis_loss(coords: torch.Tensor, seq_lens: list[int], mask: torch.Tensor, eps: float) -> torch.Tensor:
    """IgFold's ``cis_peptide_loss`` per batch member (IgFold's own sums over the batch, fine for its batch of 1)."""
    from igfold.utils.geometry import dihedral

    mask = mask.clone()
    for chain_end in np.cumsum(seq_lens):
        mask[:, chain_end - 1] = 0
    mask_ = mask[:, 1:] * mask[:, :-1]
    n, ca, c, _ = coords.unbind(-2)
    dih = dihedral(ca[:, :-1], c[:, :-1], n[:, 1:], ca[:, 1:], eps=0)
    return (1 - torch.cos(dih - np.pi)).sum(-1) / (mask_.sum(-1) + eps)


def _clash_loss(coords: torch.Tensor, mask: torch.Tensor, eps: float, tol: float = 1.5) -> torch.Tensor:
    """IgFold's ``vdw_clash_loss`` per batch member, as it computes it for one member: its radius table broadcasts
    to each column atom's radius twice (``(b, 1, 4L) + (1, b, 4L)`` at b = 1), which a batch would break."""
    from igfold.training.utils import VDW_C, VDW_N

    length, a = coords.shape[1], coords.shape[2]
    pair_mask = mask.repeat_interleave(a, dim=1)
    pair_mask = pair_mask.unsqueeze(-1) * pair_mask.unsqueeze(-2)
    radii = torch.tensor([VDW_N, VDW_C, VDW_C, VDW_C], device=coords.device).repeat(length)
    flat = coords.reshape(coords.shape[0], length * a, -1)
    distances = (flat.unsqueeze(-2) - flat.unsqueeze(-3)).norm(dim=-1)
    loss = (2 * radii - tol - distances).clamp(min=0)
    return loss.sum(dim=(-1, -2)) / (pair_mask.sum(dim=(-1, -2)) + eps)


def refine_together(
    model: torch.nn.Module, inputs: Any, translations: torch.Tensor, rotations: torch.Tensor, steps: int = REFINE_STEPS
) -> tuple[torch.Tensor, torch.Tensor]:
    """IgFold's ``gradient_refine`` on K members' frames at once (``(K, L, 3)``, ``(K, L, 3, 3)``); refined frames.

    The same loss per member (Kabsch MSE to its own start plus bond, angle, clash and cis-peptide violations) and
    the same Adam (elementwise, lr 2e-2): member k's result equals a refinement of member k alone, in one loop.
    """
    from einops import rearrange
    from igfold.training.utils import EPS, bond_angle_loss, bond_len_loss, kabsch_mse

    clean, _, seq_lens, _ = model.clean_input(inputs)
    k = translations.shape[0]
    batch_mask = clean.batch_mask.expand(k, -1)
    res_mask = rearrange(batch_mask, "b (l a) -> b l a", a=4).all(-1)
    start = model.transform_ideal_coords(translations, rotations).detach()
    start_flat = rearrange(start[:, :, :4], "b l a d -> b (l a) d")
    t = torch.nn.Parameter(translations.detach().clone())
    r = torch.nn.Parameter(rotations.detach().clone())
    optimizer = torch.optim.Adam([t, r], lr=2e-2)
    with torch.enable_grad():
        for _ in range(steps):
            optimizer.zero_grad()
            coords = model.transform_ideal_coords(t, r)
            violation = (
                bond_len_loss(coords, seq_lens, res_mask, eps=EPS)
                + bond_angle_loss(coords, seq_lens, res_mask, eps=EPS)
                + _clash_loss(coords, res_mask, EPS)
                + _cis_loss(coords, seq_lens, res_mask, EPS)
            )
            flat = rearrange(coords[:, :, :4], "b l a d -> b (l a) d")
            rmsd = kabsch_mse(flat, start_flat, align_mask=batch_mask, mask=batch_mask)
            (rmsd + violation).sum().backward()
            optimizer.step()
    return t.detach(), r.detach()


def predict_one(antiberty: Any, models: list[torch.nn.Module], chains: dict[str, str]) -> Any:
    """IgFold's prediction for one chain or H/L pair: every member folds, their frames are refined together
    (:func:`refine_together`), each member scores its refined structure, the lowest 90th-percentile pRMSD wins.

    Returns IgFold's output (``coords`` (1, L, 5, 3), ``prmsd`` (1, L, 4)), as ``predict_structures`` does.
    """
    from einops import rearrange
    from igfold.model.interface import IgFoldInput
    from igfold.utils.coordinates import place_o_coords

    seqs = list(chains.values())
    with torch.no_grad():
        embs, atts = antiberty.embed(seqs, return_attention=True)
        inputs = IgFoldInput(
            embeddings=[e[1:-1].unsqueeze(0) for e in embs],
            attentions=[a[:, :, 1:-1, 1:-1].unsqueeze(0) for a in atts],
            return_embeddings=True,
        )
        outs = [model(inputs) for model in models]
    t, r = refine_together(
        models[0], inputs, torch.cat([o.translations for o in outs]), torch.cat([o.rotations for o in outs])
    )
    seq_lens = [len(q) for q in seqs]
    best, best_score = None, None
    with torch.no_grad():
        for k, (model, out) in enumerate(zip(models, outs, strict=True)):
            out.translations, out.rotations = t[k : k + 1], r[k : k + 1]
            out.prmsd = model.score_coords(inputs, out)
            out.coords = place_o_coords(model.transform_ideal_coords(out.translations, out.rotations), seq_lens)
            score = out.prmsd.quantile(0.9)
            if best_score is None or score < best_score:
                best, best_score = out, score
    best.prmsd = rearrange(best.prmsd, "b (l a) -> b l a", a=4)
    return best


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
        threads: int | None = None,
    ) -> None:
        missing = igfold_missing()
        if missing is not None:
            raise FoldingUnavailable(f"IgFold unavailable: {missing}")
        resolved = resolve_device(device) if isinstance(device, str) else device
        super().__init__(resolved, cache_path, max_batch_residues or default_batch_residues(resolved))
        self.num_models = num_models or default_num_models()
        self.threads = threads or default_threads(resolved)
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
        version = igfold_version()
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
        with torch_threads(self.threads):
            if len(chains) == 1:  # CPU folds one unit at a time; a GPU batches with IgFold's own batched path
                outputs = [predict_one(self._antiberty, self._models, chains[0])]
            else:
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

"""ESMFold as a folding backend: pLDDT (0–100) per residue, weights from a folder, the hub cache or fair-esm.

Foldability is the headline metric of protein generation (Appendix E.9 of the
paper): ESMFold's predicted lDDT, above ~70 meaning a confident fold.
Backends: ``transformers.EsmForProteinFolding`` (hub id ``facebook/esmfold_v1``
or a local folder) and fair-esm's ``esmfold_v1`` (``fair-esm:esmfold_v1`` or a
``.pt`` file) when its extra dependencies (openfold, omegaconf) are installed.
Weights cannot be downloaded everywhere; a missing model raises
:class:`~protein_didi.fold.result.FoldingUnavailable` with a one-line fix, and
callers report "pLDDT not computed" instead of crashing. Batching, the cache
and the fan-out are :class:`~protein_didi.fold.backend.FoldBackend`'s.
"""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch

from protein_didi.core.device import resolve_device
from protein_didi.fold.backend import FoldBackend
from protein_didi.fold.result import FoldingUnavailable, FoldResult

DEFAULT_MODEL = "facebook/esmfold_v1"
ENV_VAR = "PROTEIN_DIDI_ESMFOLD"
FAIR_ESM_PREFIX = "fair-esm:"
CA_INDEX = 1  # atom37 order N, CA, C, …: the residue-level pLDDT viewers and AlphaFold DB show


def default_model() -> str:
    """``$PROTEIN_DIDI_ESMFOLD`` if set, else the hub id ``facebook/esmfold_v1``."""
    return os.environ.get(ENV_VAR) or DEFAULT_MODEL


def _how_to_provide() -> str:
    return (
        f"download {DEFAULT_MODEL} where the hub is reachable "
        f"(huggingface-cli download {DEFAULT_MODEL} --local-dir DIR) and pass --esmfold DIR "
        f"or set {ENV_VAR}=DIR"
    )


def _unavailable(model: str, reason: str) -> FoldingUnavailable:
    reason = " ".join(str(reason).split())[:160]
    return FoldingUnavailable(f"ESMFold weights '{model}' unavailable ({reason}); {_how_to_provide()}")


def _hub_reachable() -> bool:
    """Whether the Hugging Face endpoint's name resolves; avoids ~30 s of retries on offline machines."""
    from huggingface_hub import constants

    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return False
    return True


def _load_transformers(model: str, allow_download: bool) -> torch.nn.Module:
    from transformers import EsmForProteinFolding

    path = Path(model).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise _unavailable(model, f"{path} has no config.json, so it is not a transformers ESMFold folder")
        try:
            return EsmForProteinFolding.from_pretrained(str(path))
        except Exception as err:  # corrupt or foreign folders raise OSError, ValueError, KeyError, …
            raise _unavailable(
                model, f"cannot load {path}: {str(err).splitlines()[0] if str(err) else err!r}"
            ) from None
    try:
        return EsmForProteinFolding.from_pretrained(model, local_files_only=True)
    except Exception:  # not in the local hub cache: try the network below
        pass
    if not allow_download:
        raise _unavailable(model, "not in the local Hugging Face cache and downloads are disabled")
    if not _hub_reachable():
        raise _unavailable(model, "not in the local Hugging Face cache and the hub is unreachable")
    try:
        return EsmForProteinFolding.from_pretrained(model)
    except Exception as err:
        raise _unavailable(model, str(err).splitlines()[0] if str(err) else repr(err)) from None


def fair_esm_available() -> bool:
    """fair-esm's ESMFold needs openfold and omegaconf besides ``fair-esm`` itself."""
    try:
        import esm.esmfold.v1.pretrained  # noqa: F401
    except Exception:
        return False
    return True


def _load_fair_esm(model: str) -> torch.nn.Module:
    if not fair_esm_available():
        raise FoldingUnavailable(
            "fair-esm's ESMFold backend needs openfold and omegaconf (pip install 'fair-esm[esmfold]'); "
            f"or use the transformers backend: {_how_to_provide()}"
        )
    import esm.esmfold.v1.pretrained as esmfold_pretrained

    name = model.removeprefix(FAIR_ESM_PREFIX)
    try:
        if name.endswith(".pt"):
            if not Path(name).is_file():
                raise FileNotFoundError(f"{name} not found")
            return esmfold_pretrained._load_model(name)  # fair-esm's own loader for local checkpoints
        return getattr(esmfold_pretrained, name)()
    except AttributeError:
        raise FoldingUnavailable(f"fair-esm has no ESMFold model '{name}'; use esmfold_v1 or a .pt file") from None
    except Exception as err:
        raise _unavailable(model, str(err).splitlines()[0] if str(err) else repr(err)) from None


def _backend_of(model: str, backend: str) -> str:
    if backend not in ("auto", "transformers", "fair-esm"):
        raise ValueError(f"unknown folding backend {backend!r}; choose auto, transformers or fair-esm")
    if backend != "auto":
        return backend
    return "fair-esm" if model.startswith(FAIR_ESM_PREFIX) or model.endswith(".pt") else "transformers"


def _lm_dtype(device: torch.device, dtype: str | torch.dtype | None) -> torch.dtype:
    """Precision of the language-model half of ESMFold: half only where the device runs it fast and correctly.

    The folding trunk always stays float32 — its structure module is numerically
    sensitive, and both ESMFold implementations keep it in float32 too.
    """
    if dtype is None:
        return torch.float16 if device.type == "cuda" else torch.float32
    resolved = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    if not isinstance(resolved, torch.dtype) or resolved not in (torch.float32, torch.float16, torch.bfloat16):
        raise ValueError(f"dtype {dtype!r} not supported; use float32, float16 or bfloat16")
    if resolved == torch.float16 and device.type == "cpu":
        raise ValueError("float16 is not supported for folding on cpu; use bfloat16 or float32")
    if resolved == torch.bfloat16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError("this GPU has no bfloat16 support; use float16 or float32")
    return resolved


def _fingerprint(model: torch.nn.Module) -> str:
    """Cache id of an in-memory model: its config plus weights (all of them when small, a sample when huge)."""
    h = hashlib.sha256()
    config = getattr(model, "config", None)
    h.update((config.to_json_string() if hasattr(config, "to_json_string") else repr(config)).encode())
    tensors = list(model.state_dict().items())
    if sum(t.numel() for _, t in tensors) > 50_000_000:
        tensors = tensors[:4] + tensors[-4:]
    for name, t in tensors:
        h.update(name.encode())
        h.update(t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return f"{type(model).__name__}:{h.hexdigest()[:16]}"


def default_batch_residues(device: torch.device) -> int:
    """Padded residues per folding batch when not given.

    GPUs need wide batches to be busy; on CPU a batch only adds memory traffic (measured with tiny_esmfold at
    L = 200: 1.5 s/sequence one at a time vs 2.8 s in a batch of five), so CPU batches stay small.
    """
    return 1024 if device.type == "cuda" else 256


def model_cache_id(model: str, backend: str, num_recycles: int | None = None) -> str:
    """The cache id of a model given by name: backend plus resolved path (or hub id), without loading anything.

    Worker processes and separate jobs compute the same id, so their caches merge.
    """
    path = Path(model).expanduser()
    source = str(path.resolve()) if path.exists() else model
    model_id = f"{backend}:{source}"
    if num_recycles is not None:
        model_id += f"|recycles={num_recycles}"
    return model_id


class ESMFold(FoldBackend):
    """ESMFold with length-bucketed batching, CPU-friendly chunking and an on-disk cache (pLDDT, 0–100).

    The model is loaded on the first cache miss, so a fully cached report runs
    even where the weights are absent; :meth:`load` forces it early.
    """

    score = "plddt"
    name = "ESMFold"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        device: str | torch.device = "auto",
        cache_path: str | Path | None = None,
        chunk_size: int | None = 64,
        dtype: str | torch.dtype | None = None,
        *,
        backend: str = "auto",
        max_batch_residues: int | None = None,
        num_recycles: int | None = None,
        allow_download: bool = True,
    ) -> None:
        self.model_name = str(model)
        self.backend = _backend_of(self.model_name, backend)
        resolved = resolve_device(device) if isinstance(device, str) else device
        super().__init__(resolved, cache_path, max_batch_residues or default_batch_residues(resolved))
        self.lm_dtype = _lm_dtype(self.device, dtype)
        self.chunk_size = chunk_size
        self.num_recycles = num_recycles
        self.allow_download = allow_download
        self._model: torch.nn.Module | None = None
        self.model_id = model_cache_id(self.model_name, self.backend, num_recycles)

    @classmethod
    def from_model(
        cls,
        esmfold_model: torch.nn.Module,
        device: str | torch.device | None = None,
        cache_path: str | Path | None = None,
        chunk_size: int | None = 64,
        dtype: str | torch.dtype | None = None,
        *,
        model_id: str | None = None,
        max_batch_residues: int | None = None,
        num_recycles: int | None = None,
    ) -> ESMFold:
        """Wrap an already built ``EsmForProteinFolding`` (or fair-esm ``ESMFold``); the cache id is its fingerprint.

        The model itself is used, not a copy: it is put in eval mode on ``device``
        and its language model is cast to the chosen precision in place.
        """
        if device is None:
            device = next(esmfold_model.parameters()).device
        backend = "transformers" if type(esmfold_model).__name__ == "EsmForProteinFolding" else "fair-esm"
        folder = cls(
            model_id or "in-memory",
            device,
            cache_path,
            chunk_size,
            dtype,
            backend=backend,
            max_batch_residues=max_batch_residues,
            num_recycles=num_recycles,
            allow_download=False,
        )
        folder.model_id = f"{backend}:{model_id or _fingerprint(esmfold_model)}"
        if num_recycles is not None:
            folder.model_id += f"|recycles={num_recycles}"
        folder._prepare(esmfold_model)
        return folder

    def load(self) -> ESMFold:
        """Load the weights now; raises :class:`FoldingUnavailable` with the fix if they are missing."""
        if self._model is None:
            if self.backend == "fair-esm":
                model = _load_fair_esm(self.model_name)
            else:
                model = _load_transformers(self.model_name, self.allow_download)
            self._prepare(model)
        return self

    def _prepare(self, model: torch.nn.Module) -> None:
        model = model.eval().to(self.device)
        if hasattr(model, "esm"):
            model.esm.to(self.lm_dtype)
        # axial attention in chunks keeps CPU memory ~O(L) instead of O(L²); transformers exposes it on the
        # trunk, fair-esm on the model itself
        target = model if hasattr(model, "set_chunk_size") else getattr(model, "trunk", None)
        if target is not None:
            target.set_chunk_size(self.chunk_size)
        self._model = model

    @torch.no_grad()
    def _fold_batch(self, seqs: list[str]) -> list[FoldResult]:
        assert self._model is not None
        kwargs: dict[str, Any] = {}
        if self.num_recycles is not None:
            kwargs["num_recycles"] = self.num_recycles
        if self.backend == "transformers" and kwargs:
            # transformers' infer() does not pass num_recycles on; call forward the way infer() does
            out = self._transformers_forward(seqs, kwargs["num_recycles"])
        else:
            out = self._model.infer(seqs, **kwargs)
        scale = 100.0 if self.backend == "transformers" else 1.0  # transformers returns pLDDT in [0, 1]
        results = []
        for i, seq in enumerate(seqs):
            n = len(seq)
            # this sequence alone, without the batch's padding, as the backends' output_to_pdb expects it
            one = {}
            for k in ("positions", "aatype", "atom37_atom_exists", "residx_atom37_to_atom14", "residue_index"):
                t = (out[k][:, i : i + 1, :n] if k == "positions" else out[k][i : i + 1, :n]).detach().cpu()
                one[k] = t.float() if t.is_floating_point() else t
            if "chain_index" in out:
                one["chain_index"] = torch.as_tensor(out["chain_index"])[i : i + 1, :n].cpu()
            atom_plddt = out["plddt"][i, :n].detach().float().cpu() * scale
            exists = one["atom37_atom_exists"][0]
            one["plddt"] = atom_plddt.unsqueeze(0)
            mean = float((atom_plddt * exists).sum() / exists.sum().clamp(min=1))
            pdb = self._model.output_to_pdb(one)[0]
            results.append(FoldResult(seq, mean, atom_plddt[:, CA_INDEX].numpy().copy(), pdb, "plddt"))
        return results

    def _transformers_forward(self, seqs: list[str], num_recycles: int) -> dict[str, torch.Tensor]:
        from transformers.models.esm.openfold_utils import residue_constants

        assert self._model is not None
        order = residue_constants.restype_order_with_x
        aatype = torch.full((len(seqs), max(map(len, seqs))), 0, dtype=torch.long)
        mask = torch.zeros_like(aatype)
        for row, s in enumerate(seqs):
            aatype[row, : len(s)] = torch.tensor([order.get(c, order["X"]) for c in s])
            mask[row, : len(s)] = 1
        aatype, mask = aatype.to(self.device), mask.to(self.device)
        positions = torch.arange(aatype.shape[1], device=self.device).expand(len(seqs), -1)
        return self._model(aatype, mask, position_ids=positions, num_recycles=num_recycles)


Folder = ESMFold
"""The historical name of :class:`ESMFold`."""


def esmfold_config(
    hidden_size: int,
    num_layers: int,
    num_heads: int,
    intermediate_size: int | None = None,
    esmfold: dict | None = None,
) -> Any:
    """An ``EsmConfig`` for ``EsmForProteinFolding`` on the ESM alphabet with an LM of the given size.

    ``intermediate_size`` defaults to 4 × hidden as in ESM-2; ``esmfold`` overrides the folding trunk
    (transformers' defaults are ESMFold v1's).
    """
    import esm
    from transformers import EsmConfig

    vocab = list(esm.Alphabet.from_architecture("ESM-1b").all_toks)
    return EsmConfig(
        vocab_size=len(vocab),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=intermediate_size or 4 * hidden_size,
        pad_token_id=vocab.index("<pad>"),
        mask_token_id=vocab.index("<mask>"),
        position_embedding_type="rotary",
        emb_layer_norm_before=False,
        token_dropout=True,
        is_folding_model=True,
        vocab_list=vocab,
        esmfold_config={"fp16_esm": False, **(esmfold or {})},
    )

"""Old import path of the folding code, which now lives in :mod:`protein_didi.fold` (kept for existing callers)."""

from protein_didi.fold.backend import FoldBackend, length_batches
from protein_didi.fold.cache import FoldCache
from protein_didi.fold.esmfold import (
    CA_INDEX,
    DEFAULT_MODEL,
    ENV_VAR,
    FAIR_ESM_PREFIX,
    ESMFold,
    Folder,
    _backend_of,
    _lm_dtype,
    default_batch_residues,
    default_model,
    esmfold_config,
    fair_esm_available,
    model_cache_id,
)
from protein_didi.fold.result import FoldingUnavailable, FoldResult, ProgressCallback
from protein_didi.fold.testing import tiny_esmfold

__all__ = [
    "CA_INDEX",
    "DEFAULT_MODEL",
    "ENV_VAR",
    "FAIR_ESM_PREFIX",
    "ESMFold",
    "FoldBackend",
    "FoldCache",
    "FoldResult",
    "Folder",
    "FoldingUnavailable",
    "ProgressCallback",
    "_backend_of",
    "_lm_dtype",
    "default_batch_residues",
    "default_model",
    "esmfold_config",
    "fair_esm_available",
    "length_batches",
    "model_cache_id",
    "tiny_esmfold",
]

"""One registry of named protein models, and the only place that reads or writes model folders.

Names:
    ``teacher``       the embedded tiny teacher (trained on CPU, shipped in the package)
    ``student``       its DiDi-Instruct student (8-step)
    ``student-idlm``  its IDLM student
    ``antibody-student``  AntiBERTy distilled by DiDi-Instruct into an 8-step antibody generator (120 CPU
                      iterations at 120 residues); samples confidence-ordered (τ = 0.1) by default, the setting
                      chosen on the frontier benchmark's validation split; its head-only discriminator reads
                      AntiBERTy's features, so RGAS needs ``pip install -e .[antibody]`` (as does CDR redesign)
    ``antibody-student-idlm``  AntiBERTy distilled by IDLM (60 CPU iterations; no discriminator)
    ``antibody-student-human``  NON-COMMERCIAL (CC BY-NC-SA 4.0, trained on OAS data): AntiBERTy tuned on the
                      real human repertoire (top 2 layers, masked-diffusion objective), then distilled by
                      DiDi-Instruct (80 student updates) into an 8-step human antibody generator; samples
                      confidence-ordered (τ = 3) by default, chosen on validation; no discriminator (RGAS refused)
    ``dplm-150m``     DPLM-150M from the hub id ``airkingbd/dplm_150m`` (needs the weights)
    ``antiberty``     AntiBERTy (BERT, 26 M parameters, antibodies; ≤ 510 residues), read from the
                      installed ``antiberty`` package's files (``pip install -e .[antibody]``), no network
A path may be given instead: a folder written by :func:`save_model`, or a
``transformers`` ESM/DPLM or BERT masked-LM folder (``config.json`` + weights, + ``vocab.txt`` for BERT).

Model folders record a ``family``: ``esm`` (:class:`EsmDenoiser`; the default for
folders written before families existed) or ``bert`` (:class:`BertDenoiser`,
whose folder also keeps the model's vocabulary list and special tokens).

The folder format, the name dispatch, the discriminator (full or head-only) and the precision are the
domain-agnostic :mod:`protein_didi.core.pretrained`; this module fills in the protein models.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import BertConfig, EsmConfig, EsmForMaskedLM

from protein_didi.core import pretrained as core
from protein_didi.core.checkpoint import CheckpointError, load_json
from protein_didi.core.pretrained import CHECKPOINT_DIR, ModelNotFoundError, with_precision
from protein_didi.core.schedule import get_schedule
from protein_didi.protein.antiberty_weights import AntibertyWeights, AntibertyWeightsMissing, resolve_antiberty_weights
from protein_didi.protein.hf_mlm import BertDenoiser, load_bert_folder
from protein_didi.protein.model import EsmDenoiser

ProteinDenoiser = EsmDenoiser | BertDenoiser
EMBEDDED = {
    "teacher": "teacher",
    "student": "student",
    "student-idlm": "student-idlm",
    "antibody-student": "antibody-student",
    "antibody-student-idlm": "antibody-student-idlm",
    "antibody-student-human": "antibody-student-human",  # CC BY-NC-SA 4.0 (trained on OAS data): non-commercial
}
HUB_IDS = {"dplm-150m": "airkingbd/dplm_150m", "dplm-650m": "airkingbd/dplm_650m"}
PACKAGED = {"antiberty": "AntiBERTy_md_smooth"}  # name → folder under the package's trained_models/
NON_COMMERCIAL = {"antibody-student-human": "CC BY-NC-SA 4.0, trained on OAS data"}
"""Shipped models whose licence forbids commercial use, with why: named so wherever models are offered."""
ANTIBODY_MODELS = frozenset({"antiberty"})
"""Models of antibody chains: they, and every model distilled or tuned from them, get the antibody checks."""
FORMAT = "protein_didi/1"
FAMILIES = ("esm", "bert")

__all__ = [
    "ANTIBODY_MODELS",
    "CHECKPOINT_DIR",
    "EMBEDDED",
    "FAMILIES",
    "FORMAT",
    "HUB_IDS",
    "NON_COMMERCIAL",
    "PACKAGED",
    "LoadedModel",
    "ModelNotFoundError",
    "ProteinDenoiser",
    "is_antibody_model",
    "load_model",
    "model_choices",
    "packaged_folder",
    "packaged_weights",
    "save_model",
    "with_precision",
]


class LoadedModel(core.LoadedModel[ProteinDenoiser]):
    """A protein denoiser (ESM or BERT family) plus what sampling needs to know about it."""


class ProteinModels(core.ModelRegistry[ProteinDenoiser]):
    """Protein folders: ESM- or BERT-family denoisers; foreign folders are ``transformers`` masked LMs."""

    format = FORMAT
    embedded = EMBEDDED
    missing_hint = "reinstall the package or train it (see README: train_teacher / distill)"
    choices = (
        "teacher, student, student-idlm, antibody-student, antibody-student-idlm, antibody-student-human "
        "(non-commercial: trained on OAS data), dplm-150m, antiberty or a checkpoint folder"
    )
    loaded_type = LoadedModel

    def describe(self, model: ProteinDenoiser) -> dict[str, Any]:
        family = getattr(model, "family", "esm")
        if family not in FAMILIES:
            raise ValueError(f"cannot save a model of family {family!r}; known: {FAMILIES}")
        fields: dict[str, Any] = {
            "family": family,
            "architecture": model.config.to_diff_dict() | {"model_type": family},
        }
        if family == "bert":
            fields |= {"vocabulary": model.vocab, "special_tokens": model.special_tokens}
        return fields

    def weights(self, model: ProteinDenoiser) -> dict[str, torch.Tensor]:
        return model.mlm.state_dict()

    def load_weights(self, model: ProteinDenoiser, state: dict[str, torch.Tensor]) -> None:
        model.mlm.load_state_dict(state)

    def builder(self, path: Path, cfg: dict) -> Callable[[], ProteinDenoiser]:
        family = cfg.get("family", "esm")
        if family not in FAMILIES:
            raise CheckpointError(f"{path}/config.json names unknown model family {family!r}; known: {FAMILIES}")
        if family == "bert":
            bert_config = BertConfig(**cfg["architecture"])
            vocab, special_tokens = cfg["vocabulary"], cfg.get("special_tokens")
            return lambda: BertDenoiser(bert_config, vocab, special_tokens)
        esm = EsmConfig(**cfg["architecture"])
        return lambda: EsmDenoiser(esm)

    def read_foreign(
        self, path: Path, cfg: dict | None, name: str, device: torch.device | str, **_: Any
    ) -> LoadedModel:
        return _load_transformers(str(path), name, device)

    def read_other(self, name: str, device: torch.device | str, **_: Any) -> LoadedModel | None:
        if "/" in name and not name.startswith((".", "/")):  # a hub id
            return _load_transformers(name, name, device)
        return None


MODELS = ProteinModels()


def model_choices() -> str:
    """The ``--model`` help: every registered name, non-commercial ones marked with their licence."""
    names = [f"{n} (NON-COMMERCIAL: {NON_COMMERCIAL[n]})" if n in NON_COMMERCIAL else n for n in MODELS.names()]
    return f"{', '.join(names)} or a checkpoint folder"


# config.json + model.safetensors (half precision by default, to keep the repo small) for either family, so
# trainers export students without knowing which one they distilled
save_model = MODELS.save


def resolve(name_or_path: str) -> str | Path:
    """The folder of an embedded name, the hub id of a hub name, else the path given."""
    return HUB_IDS[name_or_path] if name_or_path in HUB_IDS else MODELS.resolve(name_or_path)


def packaged_weights(name: str) -> AntibertyWeights:
    """Weights folder, vocabulary and source of a packaged model, or a one-line error with the fix.

    AntiBERTy's are resolved by :mod:`protein_didi.protein.antiberty_weights` (``$ANTIBERTY_WEIGHTS_DIR``, the
    antiberty 0.1.3 package, or the project cache), the same files IgFold is given.
    """
    if name not in PACKAGED:
        raise ModelNotFoundError(f"no packaged model '{name}'; choose one of {', '.join(PACKAGED)}")
    try:
        return resolve_antiberty_weights()
    except AntibertyWeightsMissing as err:
        raise ModelNotFoundError(f"model '{name}': {err}; pip install -e .[antibody]") from None


def packaged_folder(name: str) -> Path:
    """The folder holding a packaged model's weights folder (``trained_models/`` of antiberty 0.1.3's layout)."""
    return packaged_weights(name).folder.parent


def load_model(name_or_path: str, device: torch.device | str = "cpu", precision: str = "fp32") -> LoadedModel:
    """Load a named model or a folder for inference in ``precision`` (auto, fp32, bf16, int8).

    The precision is checked against the device before any weights are read
    (one-line :class:`~protein_didi.core.precision.PrecisionError`) and applied
    once here. Trainers load in the default fp32. One-line
    :class:`ModelNotFoundError` when weights are missing.
    """
    return MODELS.load(name_or_path, device, precision)


def _load_packaged(name: str, device: torch.device | str) -> LoadedModel:
    """A model shipped inside a pip package (AntiBERTy), read from its files; log-linear schedule."""
    weights = packaged_weights(name)
    model = load_bert_folder(weights.folder, vocab_file=weights.vocab_file)
    info = {"source": f"{name}: {weights.source}", "max_residues": model.max_residues}
    info["antibody"] = name in ANTIBODY_MODELS
    return LoadedModel(model.to(device).eval(), get_schedule("loglinear"), name, info)


def is_antibody_model(info: dict) -> bool:
    """Whether a model makes antibody chains: AntiBERTy itself, a model whose info says so (students and tuned
    teachers inherit the flag), or one distilled from a named antibody model (students saved before the flag)."""
    return bool(info.get("antibody")) or info.get("teacher") in ANTIBODY_MODELS


def _load_hub(name: str, device: torch.device | str) -> LoadedModel:
    return _load_transformers(HUB_IDS[name], name, device)


def _load_transformers(name_or_path: str, name: str, device: torch.device | str) -> LoadedModel:
    """ESM-2 / DPLM (local folder or hub id) or BERT-family (local folder) masked LMs saved by ``transformers``."""
    local = Path(name_or_path)
    if local.is_dir() and load_json(local / "config.json").get("model_type") == "bert":
        model = load_bert_folder(local)
        info = {"source": name_or_path, "max_residues": model.max_residues}
        return LoadedModel(model.to(device).eval(), get_schedule("loglinear"), name, info)
    try:
        mlm = EsmForMaskedLM.from_pretrained(name_or_path)
    except OSError as err:
        raise ModelNotFoundError(
            f"cannot load '{name_or_path}' ({str(err).splitlines()[0][:120]}); download it where the hub is reachable "
            f"(huggingface-cli download {name_or_path} --local-dir DIR) and pass --model DIR"
        ) from None
    model = EsmDenoiser.from_mlm(mlm)
    return LoadedModel(model.to(device).eval(), get_schedule("loglinear"), name, {"source": name_or_path})


for _name in PACKAGED:
    MODELS.register(_name, _load_packaged)
for _name in HUB_IDS:
    MODELS.register(_name, _load_hub)

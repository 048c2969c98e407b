"""Named models and the folders they are saved in: the one shape every domain fills in.

A domain subclasses :class:`ModelRegistry`, saying how its denoiser is described in and rebuilt from a
folder's ``config.json``, which tensors are its weights, which names it ships and which foreign checkpoints it
also reads. Everything else lives here, once:

* :class:`LoadedModel`: a denoiser plus what sampling needs to know about it (schedule, provenance, role,
  discriminator, precision);
* our model folder: ``config.json`` (``format``, ``role``, ``architecture``, ``schedule``, ``info``, ``extra``
  and the domain's own fields) + ``model.safetensors`` (half precision by default, to keep the repo small) +
  one ``NAME.safetensors`` per extra set of tensors (``discriminator``, for RGAS);
* the way from a name or a path to a loader (registered names, shipped folders, our folders, foreign ones),
  with one-line :class:`ModelNotFoundError` / :class:`~protein_didi.core.checkpoint.CheckpointError` messages;
* the DiDi-Instruct discriminator of a student: a full copy, or (``info["disc_head_only"]``) a head on the
  frozen teacher that ``info["teacher"]`` names, read on first use only;
* the inference precision, checked against the device before any weights are read and applied once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import torch
from torch import nn

from protein_didi.core.checkpoint import CheckpointError, load_json, load_tensors, save_json, save_tensors
from protein_didi.core.discriminator import Discriminator
from protein_didi.core.precision import (
    apply_precision,
    convert_for_inference,
    discriminator_precision,
    resolve_precision,
)
from protein_didi.core.schedule import NoiseSchedule, get_schedule

Device = torch.device | str
ModelT = TypeVar("ModelT", bound=nn.Module)
CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "checkpoints"  # the shipped models' folders


class ModelNotFoundError(CheckpointError):
    """Weights for a requested model are not on this machine."""


@dataclass
class LoadedModel(Generic[ModelT]):
    """A denoiser plus what sampling needs to know about it."""

    model: ModelT
    schedule: NoiseSchedule
    name: str
    info: dict[str, Any] = field(default_factory=dict)
    role: str = "teacher"
    discriminator: nn.Module | None = None
    precision: str = "fp32"
    # a head-only discriminator reads its features from the teacher, loaded on first use (RGAS) only
    discriminator_loader: Callable[[], nn.Module] | None = None

    @property
    def has_discriminator(self) -> bool:
        """Whether RGAS can run: a discriminator is loaded or loadable."""
        return self.discriminator is not None or self.discriminator_loader is not None

    def require_discriminator(self) -> nn.Module:
        """The discriminator RGAS needs (loaded now if it is head-only), or a one-line ValueError."""
        if self.discriminator is None and self.discriminator_loader is not None:
            disc = self.discriminator_loader()
            if discriminator_precision(self.precision) != "fp32":  # the head; the frozen backbone loads converted
                apply_precision(disc, discriminator_precision(self.precision))
            self.discriminator = disc
        if self.discriminator is None:
            raise ValueError(
                f"RGAS needs a discriminator; model '{self.name}' has none (use a DiDi-Instruct student, or "
                "--sampler ancestral)"
            )
        return self.discriminator


def with_precision(loaded: LoadedModel, precision: str) -> LoadedModel:
    """Convert a freshly loaded fp32 model (and its discriminator) to a resolved precision, in place.

    A head-only discriminator is converted when it is first loaded (:meth:`LoadedModel.require_discriminator`).
    """
    convert_for_inference(loaded.model, loaded.discriminator, precision)
    loaded.precision = precision
    return loaded


def cast(tensors: Mapping[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Floating-point tensors in ``dtype`` (integer buffers as they are): how weights are stored."""
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}


def load_state(load: Callable[[dict[str, torch.Tensor]], Any], state: Mapping[str, torch.Tensor], where: str) -> None:
    """``load`` an fp32 copy of ``state``; a mismatch becomes the one-line CheckpointError ``"{where} (reason)"``."""
    try:
        load({k: v.float() for k, v in state.items()})
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{where} ({first[:200]})") from None


class ModelRegistry(Generic[ModelT]):
    """A domain's named models and model folders; the domain subclasses it, sets the attributes, fills in the hooks.

    Named loaders (:meth:`register`) come first: a name maps to a function that builds the model from wherever
    its weights are (an installed package, a hub id). Shipped names (``embedded``) are folders under
    :data:`CHECKPOINT_DIR`; any other name is a path (or, failing that, whatever :meth:`read_other` makes of it).
    """

    format: str  # config.json "format" of this domain's folders
    embedded: Mapping[str, str] = {}  # shipped name → its folder under CHECKPOINT_DIR
    noun = "model"  # what messages call a model of this domain
    not_a_model = "folder (needs config.json and model.safetensors)"  # "{path} is not a {noun} {not_a_model}"
    missing_hint = "train it"  # "embedded {noun} '{name}' is missing from {path}; {missing_hint}"
    choices = "a model folder"  # "no {noun} '{name}': give {choices}"
    file_suffixes: tuple[str, ...] = ()  # single-file checkpoints handed to read_foreign (with cfg None)
    loaded_type: type[LoadedModel] = LoadedModel

    def __init__(self) -> None:
        self.loaders: dict[str, Callable[[str, Device], LoadedModel]] = {}

    def register(self, name: str, loader: Callable[[str, Device], LoadedModel]) -> None:
        """Load ``name`` with ``loader(name, device)`` (in fp32; :meth:`load` applies the precision)."""
        self.loaders[name] = loader

    def names(self) -> list[str]:
        """Every name that needs no path: the shipped folders, then the named loaders, in the order they were added.

        Help texts list these rather than a copy, so a model added to the registry is offered everywhere at once.
        """
        return [*self.embedded, *self.loaders]

    # --- the domain's part ---------------------------------------------------------------------------------------

    def describe(self, model: ModelT) -> dict[str, Any]:
        """The ``config.json`` fields that rebuild ``model`` (``architecture`` at least); ValueError if unsavable."""
        raise NotImplementedError

    def weights(self, model: ModelT) -> dict[str, torch.Tensor]:
        """The tensors ``model.safetensors`` holds."""
        raise NotImplementedError

    def load_weights(self, model: ModelT, state: dict[str, torch.Tensor]) -> None:
        """Inverse of :meth:`weights`; raises ``RuntimeError`` on missing or mismatched tensors."""
        raise NotImplementedError

    def builder(self, path: Path, cfg: dict) -> Callable[[], ModelT]:
        """A factory of fresh (random) models of the folder's architecture: the model and a discriminator's backbone.

        ``KeyError``/``TypeError``/``ValueError`` from it or from the models it builds mean an invalid
        ``architecture``.
        """
        raise NotImplementedError

    def derived(self, key: str) -> bool:
        """Whether a tensor is recomputed by the model (so extra tensor files leave it out); none by default."""
        return False

    def loaded(
        self, model: ModelT, schedule: NoiseSchedule, name: str, info: dict, role: str, path: Path, cfg: dict
    ) -> LoadedModel:
        """The :class:`LoadedModel` of a model read from one of our folders (a domain may read more files)."""
        return self.loaded_type(model, schedule, name, info, role)

    def read_foreign(self, path: Path, cfg: dict | None, name: str, device: Device, **options: Any) -> LoadedModel:
        """A folder whose ``config.json`` (``cfg``) is not ours, or a file with one of ``file_suffixes`` (cfg None)."""
        raise CheckpointError(f"{path} is not a {self.noun} {self.not_a_model}")

    def read_other(self, name: str, device: Device, **options: Any) -> LoadedModel | None:
        """The last resort for a name that is no registered name, shipped model or path here (a hub id); None."""
        return None

    # --- shared ------------------------------------------------------------------------------------------------------

    def resolve(self, name_or_path: str) -> Path:
        """The folder of a shipped name, else the path given."""
        return CHECKPOINT_DIR / self.embedded[name_or_path] if name_or_path in self.embedded else Path(name_or_path)

    def load(self, name_or_path: str, device: Device = "cpu", precision: str = "fp32", **options: Any) -> LoadedModel:
        """Load a named model or a path for inference in ``precision`` (auto, fp32, bf16, int8).

        The precision is checked against the device before any weights are read (one-line
        :class:`~protein_didi.core.precision.PrecisionError`) and applied once here. ``options`` go to the
        domain's foreign readers.
        """
        resolved = resolve_precision(precision, device)
        return with_precision(self.read(name_or_path, device, **options), resolved)

    def read(self, name_or_path: str, device: Device, **options: Any) -> LoadedModel:
        """The fp32 model a name or path stands for, or a one-line error saying what is missing."""
        if name_or_path in self.loaders:
            return self.loaders[name_or_path](name_or_path, device)
        path = self.resolve(name_or_path)
        if path.is_file() and path.suffix in self.file_suffixes:
            return self.read_foreign(path, None, name_or_path, device, **options)
        if path.is_dir() and (path / "config.json").is_file():
            cfg = load_json(path / "config.json")
            if cfg.get("format") == self.format:
                return self.read_ours(path, cfg, name_or_path, device)
            return self.read_foreign(path, cfg, name_or_path, device, **options)
        if path.exists():
            raise CheckpointError(f"{path} is not a {self.noun} {self.not_a_model}")
        if name_or_path in self.embedded:
            raise ModelNotFoundError(
                f"embedded {self.noun} '{name_or_path}' is missing from {path}; {self.missing_hint}"
            )
        loaded = self.read_other(name_or_path, device, **options)
        if loaded is None:
            raise ModelNotFoundError(f"no {self.noun} '{name_or_path}': give {self.choices}")
        return loaded

    def save(
        self,
        out_dir: str | Path,
        model: ModelT,
        schedule: NoiseSchedule,
        role: str,
        info: dict[str, Any] | None = None,
        extra_tensors: dict[str, dict[str, torch.Tensor]] | None = None,
        dtype: torch.dtype = torch.float16,
        **fields: Any,
    ) -> Path:
        """Write one of our folders; ``config.json`` comes last, so a folder that has one is complete.

        ``fields`` are more ``config.json`` entries (what the domain wrote beside the weights, say).
        """
        out = Path(out_dir)
        described = self.describe(model)  # an unsavable model fails before any file is written
        save_tensors(out / "model.safetensors", cast(self.weights(model), dtype))
        for name, tensors in (extra_tensors or {}).items():
            kept = {k: v for k, v in tensors.items() if not self.derived(k)}
            save_tensors(out / f"{name}.safetensors", cast(kept, dtype))
        cfg = {
            "format": self.format,
            "role": role,
            **described,
            "schedule": {"name": schedule.name, "eps": schedule.eps},
            "extra": sorted(extra_tensors or {}),
            "info": info or {},
            **fields,
        }
        save_json(out / "config.json", cfg)
        return out

    def read_ours(self, path: Path, cfg: dict, name: str, device: Device) -> LoadedModel:
        """One of our folders: the model, and its discriminator when ``extra`` lists one."""
        if "architecture" not in cfg:
            raise CheckpointError(f"{path}/config.json has no 'architecture'; re-export the model")
        try:
            build = self.builder(path, cfg)
            model = build()
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(
                f"{path}/config.json has no valid 'architecture' ({err}); re-export the model"
            ) from None
        load_state(
            functools.partial(self.load_weights, model),
            load_tensors(path / "model.safetensors"),
            f"{path}/model.safetensors does not match its config.json",
        )
        schedule = get_schedule(**cfg["schedule"])
        loaded = self.loaded(
            model.to(device).eval(), schedule, name, cfg.get("info", {}), cfg.get("role", "teacher"), path, cfg
        )
        if "discriminator" in cfg.get("extra", []):
            load_disc = functools.partial(self.read_discriminator, path, build, device, loaded)
            if loaded.info.get("disc_head_only"):
                loaded.discriminator_loader = load_disc
            else:
                loaded.discriminator = load_disc()
        return loaded

    def read_discriminator(
        self, path: Path, build: Callable[[], ModelT], device: Device, owner: LoadedModel
    ) -> nn.Module:
        """D from ``discriminator.safetensors``: a full copy, or (``disc_head_only``) a head on the teacher it names."""
        if owner.info.get("disc_head_only"):
            teacher = owner.info.get("teacher")
            if not teacher:
                raise CheckpointError(f"{path}/config.json has a head-only discriminator but names no teacher")
            try:
                backbone = self.load(str(teacher), device, discriminator_precision(owner.precision)).model
            except ModelNotFoundError as err:
                raise ModelNotFoundError(f"RGAS with '{owner.name}' reads the teacher's features: {err}") from None
            disc = Discriminator(backbone, frozen_backbone=True)
        else:
            disc = Discriminator(build())
        state = load_tensors(path / "discriminator.safetensors")
        state |= {k: v for k, v in disc.state_dict().items() if self.derived(k) and k not in state}
        load_state(disc.load_state_dict, state, f"{path}/discriminator.safetensors does not match its config.json")
        return disc.to(device).eval()

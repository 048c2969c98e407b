"""Model choice and loading: embedded models, checkpoint folders, cached per server process."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from protein_didi.core.checkpoint import CheckpointError
from protein_didi.core.device import resolve_device
from protein_didi.core.precision import parameter_count
from protein_didi.protein.pretrained import (
    CHECKPOINT_DIR,
    EMBEDDED,
    PACKAGED,
    LoadedModel,
    ModelNotFoundError,
    load_model,
    packaged_folder,
)
from protein_ui.common import (
    CHECKPOINT_OPTION,
    MODEL_NOTES,
    _one_line,
)


def available_models() -> list[str]:
    """Embedded models whose weights are in the package, then packaged ones (antiberty) whose package is installed."""
    names = [name for name, folder in EMBEDDED.items() if (CHECKPOINT_DIR / folder / "config.json").is_file()]
    for name in PACKAGED:
        try:
            packaged_folder(name)
        except ModelNotFoundError:
            continue
        names.append(name)
    return names


@st.cache_resource(max_entries=4, show_spinner="Loading model…")
def _load_cached(name_or_path: str, device: str, stamp: float, precision: str = "auto") -> LoadedModel:
    return load_model(name_or_path, device, precision)


def get_model(name_or_path: str, device: str, precision: str | None = None) -> LoadedModel:
    """Each model is loaded once per server process and precision (again only if its files change).

    ``precision`` defaults to the sidebar's choice (``auto`` before it is drawn).
    """
    if name_or_path in EMBEDDED:
        folder = CHECKPOINT_DIR / EMBEDDED[name_or_path]
    elif name_or_path in PACKAGED:
        folder = packaged_folder(name_or_path) / PACKAGED[name_or_path]
    else:
        folder = Path(name_or_path)
    stamp = max((f.stat().st_mtime for f in folder.glob("*.*")), default=0.0) if folder.is_dir() else 0.0
    return _load_cached(name_or_path, device, stamp, precision or st.session_state.get("precision", "auto"))


@st.cache_resource(show_spinner=False)
def device_name() -> str:
    return str(resolve_device("auto"))


def num_params(loaded: LoadedModel) -> int:
    return parameter_count(loaded.model)  # int8 layers keep their weights outside .parameters()


def model_picker(label: str, key: str, default: str | None = None) -> tuple[str, LoadedModel | None]:
    """Selectbox of embedded models + a checkpoint folder; shows an inline error and returns None if it fails."""
    options = [*available_models(), CHECKPOINT_OPTION]
    index = options.index(default) if default in options else 0
    choice = st.selectbox(
        label,
        options,
        index=index,
        key=key,
        format_func=lambda n: f"{n} ({MODEL_NOTES[n]})" if n in MODEL_NOTES else n,
        help="Embedded models ship with the package; the list shows those present on this machine.",
    )
    if choice != CHECKPOINT_OPTION:
        target, name = choice, choice
    else:
        text = st.text_input(
            "Checkpoint folder",
            key=f"{key}_path",
            placeholder="/path/to/checkpoint",
            help="A folder written by protein_didi (config.json + model.safetensors) or a transformers ESM/DPLM one.",
        ).strip()
        if not text:
            st.info("Enter the path of a checkpoint folder.")
            return CHECKPOINT_OPTION, None
        path = Path(text).expanduser()
        if not path.is_dir():
            st.error(f"{text} is not a folder; give a checkpoint folder (config.json + model.safetensors).")
            return text, None
        target, name = str(path.resolve()), path.name
    try:
        return name, get_model(target, device_name())
    except CheckpointError as err:
        st.error(str(err))
    except Exception as err:  # a user folder can fail in many ways; show one line, never a traceback
        st.error(f"cannot load {target}: {_one_line(err)}")
    return name, None


def reference_composition(loaded: LoadedModel) -> dict[str, float] | None:
    """The model's training composition, else the embedded teacher's."""
    comp = loaded.info.get("train_composition")
    if comp:
        return comp
    if "teacher" in available_models():
        return get_model("teacher", device_name()).info.get("train_composition")
    return None

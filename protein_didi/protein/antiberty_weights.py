"""AntiBERTy's weights, found once by the project and handed to every user (``--model antiberty``, IgFold).

Why this module exists: ``antiberty==0.1.3`` (MIT) ships AntiBERTy's weights in its wheel, and the project's
``--model antiberty`` has always read them there. IgFold 1.0.1 needs ``antiberty>=1.0.0``, whose wheel ships
*no* weights (it downloads them from the Hugging Face Hub, which is not reachable everywhere) and whose runner
cannot be swapped for 0.1.3's (no ``device`` argument). Both versions cannot be installed at once, so the
project owns the weights instead of the package: the same files (``config.json``, ``pytorch_model.bin``,
``vocab.txt`` of 0.1.3) are taken from the first of

1. ``$ANTIBERTY_WEIGHTS_DIR`` (the variable antiberty 1.0 reads itself), a folder with ``config.json`` and
   ``pytorch_model.bin`` or ``model.safetensors``;
2. ``trained_models/`` of the installed ``antiberty`` package (0.1.3 has them, 1.0 does not);
3. the project cache ``$PROTEIN_DIDI_CACHE/antiberty-0.1.3`` (default ``~/.cache/protein_didi``), filled once by
   ``python -m protein_didi.protein.antiberty_weights`` from the 0.1.3 wheel that ``pip download`` fetches from
   PyPI; the files are checked against their known SHA-256 sums.

Nothing in site-packages is edited, and no Hub access happens at run time.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from protein_didi.cli import error_line
from protein_didi.core.wheel_files import WheelFilesMissing, cache_root, fetch_wheel
from protein_didi.core.wheel_files import extract_wheel as extract_wheel_files

ENV_VAR = "ANTIBERTY_WEIGHTS_DIR"
WHEEL = "antiberty==0.1.3"
MODEL_DIR = "AntiBERTy_md_smooth"
VOCAB = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"ACDEFGHIKLMNPQRSTVWY")
"""AntiBERTy's 25-token vocabulary (0.1.3's ``vocab.txt``), for weight folders that come without one."""
SHA256 = {
    f"{MODEL_DIR}/config.json": "e199c1692b5f0246ebc5522102044d6e900ffc7d56fa5932fdd5b3d56ef487e9",
    f"{MODEL_DIR}/pytorch_model.bin": "f1ae33eac8cc8784a7d4be5a600141d2fa7bc7d8d5b3f5324d64a6a63bd0f137",
    "vocab.txt": "6db8c6cd6361eb233005b2dfe665d40d7f1ba78951bdf0fe61fa670ce192419a",
}
"""The files of the antiberty 0.1.3 wheel's ``trained_models/`` (PyPI), checked after every fetch."""
FETCH_HINT = f"run python -m protein_didi.protein.antiberty_weights (fetches {WHEEL} from PyPI) or set {ENV_VAR}=DIR"


class AntibertyWeightsMissing(FileNotFoundError):
    """No AntiBERTy weights on this machine; the one-line message says how to get them."""


@dataclass(frozen=True)
class AntibertyWeights:
    """A weights folder (``config.json`` + weights), its vocabulary file and where both came from."""

    folder: Path
    vocab_file: Path
    source: str


def cache_dir() -> Path:
    """Where :func:`fetch` puts the 0.1.3 ``trained_models/`` folder."""
    return cache_root() / "antiberty-0.1.3" / "trained_models"


def _is_weights_dir(folder: Path) -> bool:
    has_weights = (folder / "pytorch_model.bin").is_file() or (folder / "model.safetensors").is_file()
    return (folder / "config.json").is_file() and has_weights


def _vocab_for(folder: Path) -> Path:
    """``vocab.txt`` beside the weights or one level up (0.1.3's layout), else the known vocabulary in the cache."""
    for candidate in (folder / "vocab.txt", folder.parent / "vocab.txt"):
        if candidate.is_file():
            return candidate
    written = cache_root() / "antiberty-vocab.txt"
    if not written.is_file():
        written.parent.mkdir(parents=True, exist_ok=True)
        written.write_text("\n".join(VOCAB) + "\n")
    return written


def _package_models() -> Path | None:
    """``trained_models/`` of the installed antiberty package, found without importing it (importing is slow)."""
    spec = importlib.util.find_spec("antiberty")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "trained_models"


def resolve_antiberty_weights() -> AntibertyWeights:
    """The AntiBERTy weights to use (see the module docstring for the order), or a one-line error with the fix."""
    env = os.environ.get(ENV_VAR)
    if env:
        folder = Path(env).expanduser()
        if not _is_weights_dir(folder):
            raise AntibertyWeightsMissing(
                f"{ENV_VAR}={env} has no config.json with pytorch_model.bin or model.safetensors; "
                f"point it at AntiBERTy's weights folder or unset it"
            )
        return AntibertyWeights(folder, _vocab_for(folder), f"{ENV_VAR}={folder}")
    package = _package_models()
    if package is not None and _is_weights_dir(package / MODEL_DIR):
        return AntibertyWeights(package / MODEL_DIR, _vocab_for(package / MODEL_DIR), f"antiberty package ({package})")
    cached = cache_dir()
    if _is_weights_dir(cached / MODEL_DIR):
        return AntibertyWeights(cached / MODEL_DIR, _vocab_for(cached / MODEL_DIR), f"{WHEEL} weights in {cached}")
    where = "the installed antiberty package has none" if package is not None else "antiberty is not installed"
    raise AntibertyWeightsMissing(f"AntiBERTy weights not found ({where}); {FETCH_HINT}")


def extract_wheel(wheel: Path, dest: Path) -> Path:
    """Copy ``antiberty/trained_models/`` out of a 0.1.3 wheel into ``dest`` (atomically), checking checksums."""
    try:
        return extract_wheel_files(wheel, "antiberty/trained_models/", dest, SHA256)
    except WheelFilesMissing as err:
        raise AntibertyWeightsMissing(str(err)) from None


def fetch(dest: Path | None = None) -> Path:
    """Download the antiberty 0.1.3 wheel with pip (no install) and keep its weights in the project cache."""
    dest = dest or cache_dir()
    if _is_weights_dir(dest / MODEL_DIR):
        return dest
    try:
        return fetch_wheel(WHEEL, "antiberty/trained_models/", dest, SHA256)
    except WheelFilesMissing as err:
        raise AntibertyWeightsMissing(f"{err}, or set {ENV_VAR}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m protein_didi.protein.antiberty_weights",
        description=f"Put AntiBERTy's weights ({WHEEL}'s, from PyPI) in the project cache for --model antiberty "
        "and IgFold, when the installed antiberty package has none (antiberty>=1.0, as IgFold needs).",
    )
    parser.add_argument("--check", action="store_true", help="only say which weights would be used")
    args = parser.parse_args(argv)
    try:
        if not args.check:
            try:
                weights = resolve_antiberty_weights()
            except AntibertyWeightsMissing:
                fetch()
        weights = resolve_antiberty_weights()
    except (AntibertyWeightsMissing, OSError) as err:
        print(error_line(err), file=sys.stderr)
        return 2
    print(f"AntiBERTy weights: {weights.folder} ({weights.source})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

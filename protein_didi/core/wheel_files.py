"""Files that a PyPI wheel ships inside itself (weights, data), fetched once into the project cache.

Why: several things this project needs exist offline only inside registry packages: AntiBERTy's
weights (``antiberty==0.1.3``), Sapiens' checkpoints (``sapiens==1.0.5``, whose own dependencies pin an
old torch and fairseq), AbNatiV's real OAS repertoire CSVs (``abnativ==2.0.9``). Installing those
packages is either impossible next to ours or pulls far more than the files. So the project fetches
the wheel with ``pip download --no-deps`` (no install), copies the files it needs into
``$PROTEIN_DIDI_CACHE`` (default ``~/.cache/protein_didi``), checks them against known SHA-256 sums,
and renames the staged folder into place (a half-written cache never looks complete).

Nothing in site-packages is edited, and nothing is downloaded at run time except by the explicit
fetch commands that call :func:`fetch_wheel`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

from protein_didi.core.checkpoint import file_sha256

CACHE_ENV = "PROTEIN_DIDI_CACHE"


class WheelFilesMissing(FileNotFoundError):
    """The wheel or the files it should hold are not to be had; the one-line message says how to fix it."""


def cache_root() -> Path:
    """``$PROTEIN_DIDI_CACHE`` or ``~/.cache/protein_didi``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "protein_didi").expanduser()


def extract_wheel(wheel: Path, prefix: str, dest: Path, sha256: Mapping[str, str] | None = None) -> Path:
    """Copy the members of ``wheel`` under ``prefix`` into ``dest`` (atomically), checking ``sha256``.

    ``sha256`` maps paths relative to ``prefix`` to their digests; a missing or altered file is an error
    naming it and nothing is written. Returns ``dest``.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        staged = Path(tmp) / dest.name
        staged.mkdir()
        with zipfile.ZipFile(wheel) as zf:
            for name in zf.namelist():
                if name.startswith(prefix) and not name.endswith("/"):
                    target = staged / name[len(prefix) :]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(name) as src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out)
        for rel, digest in (sha256 or {}).items():
            if not (staged / rel).is_file() or file_sha256(staged / rel) != digest:
                raise WheelFilesMissing(f"{wheel.name} has no intact {prefix}{rel} (checksum mismatch); wrong wheel?")
        if dest.exists():
            shutil.rmtree(dest)
        staged.rename(dest)
    return dest


def download_wheel(requirement: str, folder: Path) -> Path:
    """``pip download --no-deps`` one wheel (``name==version``) into ``folder``; returns its path."""
    name, _, version = requirement.partition("==")
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", requirement]
    done = subprocess.run([*cmd, "-d", str(folder)], capture_output=True, text=True)
    stem = name.replace("-", "_")
    wheels = sorted(Path(folder).glob(f"{stem}-{version}-*.whl")) or sorted(
        Path(folder).glob(f"{name}-{version}-*.whl")
    )
    if done.returncode != 0 or not wheels:
        last = (done.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
        raise WheelFilesMissing(f"pip download {requirement} failed ({last}); check PyPI access or pass the wheel")
    return wheels[0]


def fetch_wheel(
    requirement: str,
    prefix: str,
    dest: Path,
    sha256: Mapping[str, str] | None = None,
    wheel: Path | None = None,
) -> Path:
    """The files under ``prefix`` of ``requirement``'s wheel in ``dest``: from ``wheel`` when given, else
    downloaded with pip into a temporary folder (the wheel itself is not kept)."""
    if wheel is not None:
        if not Path(wheel).is_file():
            raise WheelFilesMissing(f"wheel {wheel} does not exist; give the path of the {requirement} wheel")
        return extract_wheel(Path(wheel), prefix, dest, sha256)
    with tempfile.TemporaryDirectory(prefix="wheel-") as tmp:
        return extract_wheel(download_wheel(requirement, Path(tmp)), prefix, dest, sha256)

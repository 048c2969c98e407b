"""AntiBERTy's weights are found once (env, antiberty 0.1.3 package, project cache) and serve --model antiberty."""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path

import pytest

from protein_didi.core.wheel_files import CACHE_ENV
from protein_didi.protein import antiberty_weights as aw
from protein_didi.protein.pretrained import ModelNotFoundError, load_model, packaged_folder


@pytest.fixture
def no_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """As under antiberty>=1.0 (IgFold's): no weights in the package; an empty project cache in tmp_path."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "antiberty" else real(name, *a))
    monkeypatch.delenv(aw.ENV_VAR, raising=False)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    return tmp_path


def test_nothing_found_is_one_line_with_the_fix(no_package: Path) -> None:
    with pytest.raises(aw.AntibertyWeightsMissing) as info:
        aw.resolve_antiberty_weights()
    assert "python -m protein_didi.protein.antiberty_weights" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ModelNotFoundError, match=r"pip install -e \.\[antibody\]"):
        load_model("antiberty")


def test_env_dir_wins_and_gets_the_known_vocabulary(no_package: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = no_package / "weights"
    monkeypatch.setenv(aw.ENV_VAR, str(folder))
    with pytest.raises(aw.AntibertyWeightsMissing, match=r"has no config\.json"):
        aw.resolve_antiberty_weights()
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"")
    weights = aw.resolve_antiberty_weights()
    assert weights.folder == folder and weights.source.startswith(aw.ENV_VAR)
    assert weights.vocab_file.read_text().split() == list(aw.VOCAB)


def test_a_wheel_with_other_files_is_refused(tmp_path: Path) -> None:
    wheel = tmp_path / "antiberty-0.1.3-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(f"antiberty/trained_models/{aw.MODEL_DIR}/config.json", "{}")
        zf.writestr(f"antiberty/trained_models/{aw.MODEL_DIR}/pytorch_model.bin", b"not the weights")
        zf.writestr("antiberty/trained_models/vocab.txt", "\n".join(aw.VOCAB))
    with pytest.raises(aw.AntibertyWeightsMissing, match="checksum mismatch"):
        aw.extract_wheel(wheel, tmp_path / "cache" / "trained_models")
    assert not (tmp_path / "cache" / "trained_models").exists()  # nothing half-written


def test_model_antiberty_loads_from_the_project_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The one-environment case: antiberty>=1.0 (no weights) installed, 0.1.3's files in the project cache."""
    try:
        real = aw.resolve_antiberty_weights()
    except aw.AntibertyWeightsMissing as err:
        pytest.skip(str(err))
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    cached = aw.cache_dir() / aw.MODEL_DIR
    cached.mkdir(parents=True)
    for name in ("config.json", "pytorch_model.bin"):
        (cached / name).symlink_to(real.folder / name)
    (cached.parent / "vocab.txt").symlink_to(real.vocab_file)
    real_find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "antiberty" else real_find(n, *a))
    monkeypatch.delenv(aw.ENV_VAR, raising=False)
    assert packaged_folder("antiberty") == aw.cache_dir()
    loaded = load_model("antiberty")
    assert str(aw.cache_dir()) in loaded.info["source"] and loaded.info["max_residues"] == 510

"""The repertoire data step on a small wheel laid out like abnativ's: real pairs only, invalid chains dropped,
clonal clusters never split, pairs kept together, every output written and the licence beside it.

The chains are real ones from the shipped reference; the wheel around them is built here.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from data_prep import repertoire as rep
from protein_didi.protein.repertoire import load_repertoire

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("anarci") is None or shutil.which("hmmscan") is None,
    reason="anarci or hmmscan missing: pip install -e .[antibody]; apt-get install hmmer",
)


def _wheel(tmp_path: Path) -> tuple[Path, dict]:
    heavy = load_repertoire("validation", ("H",))[:12]
    light = load_repertoire("validation", ("K", "L"))[:12]
    pairs = load_repertoire("validation", ("H", "K", "L"), paired=True)[:8]  # 4 real pairs, H then L
    cut_l, cut_h = light[0].numbering.regions["CDR3"][0], heavy[0].numbering.regions["CDR3"][0]
    chimera = light[0].sequence[:cut_l] + heavy[0].sequence[cut_h:]
    duplicate = heavy[1].sequence  # the same chain read twice: kept once
    vh = pd.DataFrame({"seq_id": [f"h{i}" for i in range(12)] + ["dup"],
                       "input_seq": [c.sequence for c in heavy] + [duplicate]})  # fmt: skip
    vl = pd.DataFrame({"seq_id": [f"l{i}" for i in range(12)] + ["chim"],
                       "input_seq": [c.sequence for c in light] + [chimera]})  # fmt: skip
    ids = [f"pairedAbNGS_x{i}" for i in range(4)] + ["pIgGen_1"]
    paired = pd.DataFrame({
        "seq_id": ids,
        "input_seq_vh": [pairs[2 * i].sequence for i in range(4)] + [heavy[5].sequence],
        "input_seq_vl": [pairs[2 * i + 1].sequence for i in range(4)] + [light[5].sequence],
    })  # fmt: skip
    wheel = tmp_path / "abnativ-2.0.9-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for key, frame in (("vh", vh), ("vl", vl), ("paired", paired)):
            zf.writestr(rep.MEMBERS[key], frame.to_csv(index=False))
        zf.writestr(rep.LICENSE_MEMBER, "CC BY-NC-SA 4.0 (test copy)")
    return wheel, {"chimera": chimera, "generated_pair": heavy[5].sequence}


def test_the_data_step_keeps_real_valid_chains_and_never_splits_a_cluster(tmp_path: Path) -> None:
    wheel, planted = _wheel(tmp_path)
    out, ref = tmp_path / "out", tmp_path / "ref"
    assert rep.main(["--wheel", str(wheel), "--out", str(out), "--workers", "1", "--reference", str(ref)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    table = pd.read_csv(out / "chains.tsv.gz", sep="\t", keep_default_na=False)
    assert manifest["read"] == {"paired": 8, "vh": 12, "vl": 13}  # pIgGen left out; the exact duplicate dropped
    assert planted["chimera"] not in set(table["sequence"])
    assert any("chimera" in reason for reason in manifest["dropped"]["vl"])
    assert (table.groupby("cluster")["split"].nunique() == 1).all()  # no clonal cluster spans two splits
    paired = table[table["pair"] != ""]
    assert len(paired) == 8 and (paired.groupby("pair")["split"].nunique() == 1).all()
    assert manifest["clusters"]["spanning_splits"] == 0 and sum(manifest["splits"].values()) == len(table)
    for split in ("train", "validation", "test"):
        assert (out / f"{split}.fasta").is_file()
    assert json.loads((out / "shards" / "meta.json").read_text())["licence"].startswith("CC BY-NC-SA")
    assert (out / "LICENSE-abnativ.txt").read_text().startswith("CC BY-NC-SA")
    assert (ref / "LICENSE").is_file() and json.loads((ref / "lengths.json").read_text())["H"]["chain"]


def test_a_missing_wheel_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert rep.main(["--wheel", str(tmp_path / "nope.whl"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "nope.whl" in err

"""The ESMFold path with a tiny random-weight EsmForProteinFolding: shapes, PDB validity, batching, cache."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import torch
from biotite.sequence import ProteinSequence
from biotite.structure import get_residues
from biotite.structure.io.pdb import PDBFile

from protein_didi.fold.backend import length_batches
from protein_didi.fold.esmfold import ENV_VAR, Folder
from protein_didi.fold.result import FoldingUnavailable, FoldResult
from protein_didi.fold.testing import tiny_esmfold
from protein_didi.protein.alphabet import InvalidSequenceError
from protein_didi.protein.pretrained import ModelNotFoundError

SHORT = "MKTAYIAKQRQISFVKSHFSRQLEERLG"
LONG = "MSDNGPQNQRNAPRITFGGPSDSTGSNQNGERSGARSKQRRPQGLPNNTASWFT"


@pytest.fixture(scope="module")
def esmfold() -> torch.nn.Module:
    torch.set_num_threads(1)
    return tiny_esmfold(seed=0)


def _atoms(pdb: str):
    return PDBFile.read(io.StringIO(pdb)).get_structure(model=1, extra_fields=["b_factor"])


def test_tiny_esmfold_is_small_and_deterministic(esmfold) -> None:
    n = sum(p.numel() for p in esmfold.parameters())
    assert 1_000_000 < n < 3_000_000
    again = tiny_esmfold(seed=0)
    pairs = zip(esmfold.state_dict().values(), again.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)
    assert esmfold.config.vocab_list[:4] == ["<cls>", "<pad>", "<eos>", "<unk>"]


def test_fold_results_shapes_ranges_and_pdb(esmfold) -> None:
    folder = Folder.from_model(esmfold)
    results = folder.fold([SHORT, LONG.lower()])
    assert [r.sequence for r in results] == [SHORT, LONG]
    for res in results:
        assert isinstance(res, FoldResult)
        assert res.plddt.shape == (len(res.sequence),)
        assert np.all((res.plddt >= 0) & (res.plddt <= 100))
        assert 0 <= res.mean_plddt <= 100
        atoms = _atoms(res.pdb)
        _, res_names = get_residues(atoms)
        assert "".join(ProteinSequence.convert_letter_3to1(r) for r in res_names) == res.sequence
        # B-factors are the per-atom pLDDT on the same 0–100 scale: the summary and CA values must agree
        assert atoms.b_factor.mean() == pytest.approx(res.mean_plddt, abs=0.01)
        assert np.allclose(atoms.b_factor[atoms.atom_name == "CA"], res.plddt, atol=0.006)
        assert np.isfinite(atoms.coord).all() and atoms.coord.std() > 0.5


def test_batched_equals_single_and_buckets_respect_budget(esmfold) -> None:
    alone = Folder.from_model(esmfold).fold([SHORT])[0]
    batched = Folder.from_model(esmfold, max_batch_residues=4096)
    longer = SHORT + "WCHEY"  # within the 1.25 length ratio of a bucket
    together = batched.fold([longer, SHORT])
    assert batched.calls == 1  # one padded batch
    assert together[0].plddt.shape == (len(longer),)
    assert np.allclose(together[1].plddt, alone.plddt, atol=1e-4)  # padding is masked out
    assert together[1].pdb == alone.pdb
    lengths = [30, 300, 31, 120, 29, 130, 1000]
    batches = length_batches(lengths, max_residues=300)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        longest = max(lengths[i] for i in b)
        assert len(b) * longest <= 300 or len(b) == 1
        assert longest <= 1.25 * min(lengths[i] for i in b)


def test_cache_prevents_second_fold(esmfold, tmp_path) -> None:
    cache = tmp_path / "folds.sqlite"
    first = Folder.from_model(esmfold, cache_path=cache)
    out1 = first.fold([SHORT, LONG, SHORT])
    assert first.calls == 2  # lengths 28 and 54 fall in different buckets; the duplicate folds once
    first.fold([LONG])
    assert first.calls == 2
    rerun = Folder.from_model(esmfold, cache_path=cache)  # a new process reading the same cache
    seen = []
    out2 = rerun.fold([LONG, SHORT], progress=lambda done, total: seen.append((done, total)))
    assert rerun.calls == 0 and seen == [(2, 2)]
    assert out2[1].mean_plddt == out1[0].mean_plddt and np.array_equal(out2[0].plddt, out1[1].plddt)
    assert out2[0].pdb == out1[1].pdb
    other = Folder.from_model(tiny_esmfold(seed=1), cache_path=cache)  # other weights: another cache key
    other.fold([SHORT])
    assert other.calls == 1 and other.model_id != rerun.model_id


def test_missing_weights_one_line_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for target in (tmp_path, tmp_path / "absent-dir"):
        with pytest.raises(FoldingUnavailable) as err:
            Folder(str(target), device="cpu", allow_download=False).load()
        message = str(err.value)
        assert "\n" not in message and "--esmfold" in message and ENV_VAR in message
        assert isinstance(err.value, ModelNotFoundError)
    folder = Folder(str(tmp_path / "absent-dir"), device="cpu", cache_path=tmp_path / "c.sqlite", allow_download=False)
    with pytest.raises(FoldingUnavailable):
        folder.fold([SHORT])  # loading is lazy: the first cache miss raises


def test_invalid_input_and_precision(esmfold) -> None:
    with pytest.raises(InvalidSequenceError, match="sequence 2"):
        Folder.from_model(esmfold).fold([SHORT, "MKT1"])
    with pytest.raises(ValueError, match="float16"):
        Folder.from_model(esmfold, device="cpu", dtype="float16")
    bf16 = Folder.from_model(tiny_esmfold(), device="cpu", dtype="bfloat16")
    assert next(bf16._model.esm.parameters()).dtype == torch.bfloat16
    assert next(bf16._model.trunk.parameters()).dtype == torch.float32
    assert 0 <= bf16.fold([SHORT])[0].mean_plddt <= 100


def test_plddt_is_100_times_the_models_raw_output(esmfold) -> None:
    """transformers' ESMFold returns pLDDT in [0, 1]; reports, caches and viewers use ESMFold's 0–100 scale.

    A random tiny model gives raw values near 0.5, so a range check alone cannot tell 50 from 0.5.
    """
    res = Folder.from_model(esmfold).fold([SHORT])[0]
    with torch.no_grad():
        raw = esmfold.infer([SHORT])["plddt"][0, : len(SHORT)].float()  # (L, 37) per atom, [0, 1]
    assert 0.0 < raw.max().item() <= 1.0
    assert np.allclose(res.plddt, 100.0 * raw[:, 1].numpy(), atol=1e-3)  # CA atom
    exists = esmfold.infer([SHORT])["atom37_atom_exists"][0, : len(SHORT)].float()
    assert res.mean_plddt == pytest.approx(100.0 * float((raw * exists).sum() / exists.sum()), abs=1e-3)


def test_progress_rate_counts_only_what_folds_now(esmfold, tmp_path) -> None:
    """Cached folds are the bar's start, not its speed; a second fold call continues the same bar."""
    from protein_didi.fold.progress import FoldProgress

    cache = tmp_path / "folds.sqlite"
    Folder.from_model(esmfold, cache_path=cache).fold([SHORT, LONG])  # two of the four are cached
    folder = Folder.from_model(esmfold, cache_path=cache, max_batch_residues=1)
    out = io.StringIO()
    with FoldProgress("folding", file=out, mininterval=0) as bar:
        folder.fold([SHORT, LONG, SHORT[:20], LONG[:40]], progress=bar)
        shown = bar.bar.format_dict  # tqdm's displayed rate: its smoothed rate, else (n - initial) / elapsed
        rate = shown["rate"] or (shown["n"] - shown["initial"]) / shown["elapsed"]
        assert rate == pytest.approx(2 / shown["elapsed"], rel=0.5)  # 2 folded, not 4, per elapsed second
        assert (bar.bar.initial, bar.n, bar.bar.total) == (2, 4, 4)
        folder.fold([SHORT, LONG[:30]], progress=bar)  # a second call: one cached, one new
        assert (bar.bar.initial, bar.n, bar.bar.total) == (3, 6, 6)
    assert "6/6" in out.getvalue().split("\r")[-1] and "chain/s" in out.getvalue()


def test_pools_sharing_a_cache_leave_each_others_worker_shards_alone(esmfold, tmp_path) -> None:
    """A dead run's worker shard is merged into the (shared) cache; a live run's is neither merged nor deleted."""
    import functools
    import subprocess
    import sys

    from protein_didi.fold.cache import FoldCache
    from protein_didi.fold.fanout import FoldPool, FoldSpec

    pool = FoldPool(FoldSpec(functools.partial(tiny_esmfold, seed=0)), ["cpu"], tmp_path / "folds.sqlite")
    done = Folder.from_model(esmfold).fold([SHORT, LONG])
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    shards = {
        "dead": tmp_path / f"folds.pid{int(dead.stdout)}.worker0.sqlite",
        "live": tmp_path / f"folds.pid{os.getppid()}.worker0.sqlite",
    }
    for path, result in zip(shards.values(), done, strict=True):
        shard = FoldCache(path)
        shard.put([result], pool.model_id)
        shard.close()
    (again,) = pool.fold([SHORT])  # the dead run's fold: merged, so nothing is spawned
    assert pool.calls == 0 and again.mean_plddt == done[0].mean_plddt
    assert not shards["dead"].exists() and shards["live"].exists()
    assert pool.cache.get([LONG], pool.model_id) == {}  # the live run merges its own shard when it finishes

"""Plant single-line bugs a user would be hurt by, one at a time, and check that the tests catch each.

    python bench/mutation_check.py [--only NAME ...] [--list]

Each mutant replaces one line of the project (reveal probability, reward
normalisation, KL direction, time sampling, loss weights, checkpoint resume,
metric scales, …) in a temporary copy of the repository, runs the tests that
should catch it there, and counts it *killed* when they fail. A survivor is a
behaviour no test guards. Prints a table and writes
``bench/results/mutation_check.json``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str
    old: str  # must occur exactly once in ``file``
    new: str
    tests: tuple[str, ...]
    harm: str


SAMPLER = ("tests/test_sampler.py",)
DIDI = ("tests/test_didi.py",)
IDLM = ("tests/test_idlm_and_distill_cli.py",)

MUTANTS = [
    Mutant("reveal all at step 1", "protein_didi/core/sampler.py", "q_zs = p_x0 * (alpha_s - alpha_t)",
           "q_zs = p_x0 * (1.0 - alpha_t)", SAMPLER, "every NFE behaves like NFE = 1"),
    Mutant("stay-masked mass", "protein_didi/core/sampler.py", "stay_masked = 1.0 - alpha_s",
           "stay_masked = 1.0 - alpha_t", SAMPLER, "wrong number of tokens revealed per step"),
    Mutant("time grid stops early", "protein_didi/core/sampler.py",
           "return torch.linspace(1.0, 0.0, num_steps + 1, device=device, dtype=torch.float64)",
           "return torch.linspace(1.0, 0.1, num_steps + 1, device=device, dtype=torch.float64)",
           SAMPLER, "samples end with [MASK] tokens"),
    Mutant("categorical draw", "protein_didi/core/sampler.py", "return (probs / noise).argmax(dim=-1)",
           "return (probs * noise).argmax(dim=-1)", SAMPLER, "tokens drawn from the wrong distribution"),
    Mutant("forward masking ignores maskable", "protein_didi/core/masking.py", "masked = (u < p_mask) & maskable",
           "masked = u < p_mask", ("tests/test_schedule_and_masking.py",), "special tokens and motifs get noised"),
    Mutant("reward mean not subtracted", "protein_didi/core/didi.py",
           "return ((g - mu) / (sigma + eps)).view(-1)", "return (g / (sigma + eps)).view(-1)",
           DIDI, "grouped normalisation keeps the reward offset"),
    Mutant("sample σ instead of population σ", "protein_didi/core/didi.py",
           "sigma = g.std(dim=1, unbiased=False, keepdim=True)", "sigma = g.std(dim=1, keepdim=True)",
           DIDI, "eq. 7 scale"),
    Mutant("policy-gradient sign", "protein_didi/core/didi.py", "pg_loss = (weight * shaped * score).mean()",
           "pg_loss = -(weight * shaped * score).mean()", DIDI, "student moves away from the teacher"),
    Mutant("reverse KL", "protein_didi/core/didi.py", "kl = (p_t * (log_p_teacher - log_p_student)).sum(-1)",
           "kl = (log_p_student.exp() * (log_p_student - log_p_teacher)).sum(-1)", DIDI,
           "mode-seeking instead of the paper's mass-covering regulariser"),
    Mutant("entropy bonus sign", "protein_didi/core/didi.py",
           "return pg_loss + cfg.kl_weight * kl - cfg.entropy_weight * entropy",
           "return pg_loss + cfg.kl_weight * kl + cfg.entropy_weight * entropy", DIDI, "entropy collapse encouraged"),
    Mutant("score ignores suppression", "protein_didi/core/didi.py", "log_p = without_suppressed(log_p, suppress)",
           "log_p = log_p", DIDI, "score of tokens under a distribution they were not drawn from"),
    Mutant("D labels swapped", "protein_didi/core/discriminator.py",
           "target = torch.full_like(logits, 1.0 if is_student else 0.0)",
           "target = torch.full_like(logits, 0.0 if is_student else 1.0)", DIDI, "reward sign flips"),
    Mutant("D warm-up ignored", "protein_didi/core/didi.py", "if step >= cfg.disc_warmup:", "if step >= 0:",
           DIDI, "student trains against an untrained discriminator"),
    Mutant("uncoupled time", "protein_didi/core/didi.py",
           "tau_d = tau if cfg.coupled_time else self.times.sample(self.group, cpu_gen, self.device)",
           "tau_d = self.times.sample(self.group, cpu_gen, self.device)", DIDI, "D sees other noise levels than τ"),
    Mutant("no score decomposition", "protein_didi/core/didi.py",
           "tau_traj = tau if cfg.score_decompose else torch.ones_like(tau)", "tau_traj = torch.ones_like(tau)",
           DIDI, "one-jump student: collapse in multi-step regimes"),
    Mutant("π(t) Beta(5,2) for Beta(2,5)", "protein_didi/core/timesampling.py",
           "return u[:, a - 1].clamp(self.t_min, self.t_max).to(device=device, dtype=torch.float32)",
           "return u[:, b - 1].clamp(self.t_min, self.t_max).to(device=device, dtype=torch.float32)",
           DIDI, "τ biased to the wrong end"),
    Mutant("ω flag inverted", "protein_didi/core/timesampling.py",
           'omega = schedule.weight(tau) if self.omega == "elbo" else torch.ones_like(tau)',
           'omega = schedule.weight(tau) if self.omega == "one" else torch.ones_like(tau)', DIDI, "ω(t) dropped"),
    Mutant("ω/π untruncated", "protein_didi/core/timesampling.py", "return w.clamp(max=cap)", "return w",
           DIDI, "one τ draw takes a group's whole weight"),
    Mutant("lr never decays", "protein_didi/core/optim.py", "return max(0.0, (total - s) / (total - warmup))",
           "return 1.0", DIDI, "paper's linear decay dropped"),
    Mutant("no weight decay", "protein_didi/core/distill_base.py", '0.01, "AdamW weight decay, both networks',
           '0.0, "AdamW weight decay, both networks', DIDI, "paper's AdamW weight decay dropped"),
    Mutant("plain EMA (exports the teacher)", "protein_didi/core/ema.py",
           "return (1.0 - self.decay) / (1.0 - self.decay ** (self.num_updates + 1))", "return 1.0 - self.decay",
           ("tests/test_ema.py", *IDLM), "default runs export ~95 % teacher weights"),
    Mutant("EMA count not resumed", "protein_didi/core/ema.py", 'self.num_updates = int(state["num_updates"])',
           "self.num_updates = 0", ("tests/test_ema.py", *DIDI), "resumed runs export other weights"),
    Mutant("distillation EMA not restored", "protein_didi/core/distill_base.py",
           '        self.ema.load_state_dict(state["ema"])\n', "        pass\n", DIDI + IDLM,
           "the exported weights restart from scratch on --resume"),
    Mutant("teacher EMA not restored", "protein_didi/core/optim.py",
           '            self.ema.load_state_dict(state["ema"])\n', "            pass\n",
           ("tests/test_train_teacher.py",), "a resumed teacher exports other weights"),
    Mutant("lr schedule not restored", "protein_didi/core/distill_base.py",
           'self.sched_student.load_state_dict(state["sched_student"])', "pass", DIDI,
           "a resumed run restarts its warm-up"),
    Mutant("resume step off by one", "protein_didi/core/loop.py",
           'start, elapsed = int(state["step"]), float(state.get("elapsed_s", 0.0))',
           'start, elapsed = int(state["step"]) + 1, float(state.get("elapsed_s", 0.0))', DIDI,
           "a step is skipped on --resume"),
    Mutant("IDLM gap sign", "protein_didi/core/idlm.py", "gap = fake(z, t) - teacher(z, t)",
           "gap = teacher(z, t) - fake(z, t)", IDLM, "student moves away from the teacher"),
    Mutant("IDLM fake loss sign", "protein_didi/core/idlm.py",
           "return -((self.aux_ddp(z, t) * target).sum(-1) * weight).sum(-1).mean()",
           "return ((self.aux_ddp(z, t) * target).sum(-1) * weight).sum(-1).mean()", IDLM,
           "the fake model un-learns the student"),
    Mutant("RGAS guidance sign", "protein_didi/core/rgas.py",
           "return -disc.reward(z, t, generated, soft_tokens=soft)",
           "return disc.reward(z, t, generated, soft_tokens=soft)", ("tests/test_rgas.py",),
           "sampling steered towards the student's own errors"),
    Mutant("token dropout kills the tilt", "protein_didi/protein/model.py", "emb = soft_tokens.to(table.dtype) @ table",
           "emb = (soft_tokens.to(table.dtype) @ table).masked_fill((tokens == self.mask_id).unsqueeze(-1), 0.0)",
           ("tests/test_rgas.py",), "RGAS does nothing on ESM-2/DPLM"),
    Mutant("confidence order reversed", "protein_didi/core/confidence.py", "descending=True", "descending=False",
           ("tests/test_confidence_sampler.py",), "the least confident positions are revealed first"),
    Mutant("confidence sampler reveals one step early", "protein_didi/core/confidence.py",
           "still_masked[n + 1]", "still_masked[n]", ("tests/test_confidence_sampler.py",),
           "each step reveals the previous step's count: the last step reveals everything"),
    Mutant("trajectory subsample unweighted", "protein_didi/core/didi.py",
           "[1.0] + [(num_steps - 1) / samples] * samples", "[1.0] + [1.0] * samples", ("tests/test_didi.py",),
           "--path-samples under-weights the trajectory score (biased gradient)"),
    Mutant("motif off by one", "protein_didi/protein/generate.py", "tokens[:, pos] = ALPHABET.esm.get_idx(aa)",
           "tokens[:, pos - 1] = ALPHABET.esm.get_idx(aa)", ("tests/test_pretrained_and_sample.py",),
           "motif residues land one position early"),
    Mutant("pLDDT on the 0–1 scale", "protein_didi/fold/esmfold.py",
           'scale = 100.0 if self.backend == "transformers" else 1.0', "scale = 1.0",
           ("tests/test_eval_fold.py",), "foldability reported 100× too low"),
    Mutant("cluster entropy in bits", "protein_didi/eval/diversity.py", "return float(-(p * np.log(p)).sum())",
           "return float(-(p * np.log2(p)).sum())", ("tests/test_eval_diversity.py",), "diversity on another scale"),
    Mutant("composition KL reversed", "protein_didi/eval/stats.py", "return float(np.sum(p * np.log(p / q)))",
           "return float(np.sum(q * np.log(q / p)))", ("tests/test_eval_stats.py",), "composition KL direction"),
]  # fmt: skip


def copy_repo(dst: Path) -> None:
    """The tracked and untracked-but-not-ignored files, as they are in the working tree."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for rel in filter(None, (f.decode() for f in files)):
        src = ROOT / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)


def run_mutant(m: Mutant, repo: Path, timeout: int) -> dict[str, object]:
    path = repo / m.file
    original = path.read_text()
    if original.count(m.old) != 1:
        return {"mutant": m.name, "file": m.file, "result": "stale (line not found once)", "seconds": 0.0}
    path.write_text(original.replace(m.old, m.new))
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *m.tests],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
        result = "survived" if proc.returncode == 0 else "killed"
        if proc.returncode not in (0, 1):  # 1 = test failures; anything else is a crash of the run itself
            result = f"killed (pytest exit {proc.returncode})"
    except subprocess.TimeoutExpired:
        result = "killed (timeout)"
    finally:
        path.write_text(original)
    return {
        "mutant": m.name,
        "file": m.file,
        "result": result,
        "harm": m.harm,
        "tests": " ".join(m.tests),
        "seconds": round(time.perf_counter() - start, 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="*", default=None, help="run only mutants whose name contains one of these")
    p.add_argument("--list", action="store_true", help="list the mutants and exit")
    p.add_argument("--timeout", type=int, default=600, help="seconds per mutant")
    args = p.parse_args(argv)
    mutants = [m for m in MUTANTS if not args.only or any(s in m.name for s in args.only)]
    if args.list:
        for m in mutants:
            print(f"{m.name:40s} {m.file}  ({m.harm})")
        return 0
    with tempfile.TemporaryDirectory(prefix="mutation-") as tmp:
        repo = Path(tmp)
        copy_repo(repo)
        rows = [run_mutant(m, repo, args.timeout) for m in tqdm(mutants, desc="mutants")]
    survivors = [r["mutant"] for r in rows if r["result"] != "killed" and not str(r["result"]).startswith("killed")]
    write_results(
        "mutation_check",
        rows,
        {"mutants": len(rows), "killed": len(rows) - len(survivors), "survivors": survivors},
    )
    print(f"\n{len(rows) - len(survivors)}/{len(rows)} killed" + (f"; survivors: {survivors}" if survivors else ""))
    return 1 if survivors else 0


if __name__ == "__main__":
    raise SystemExit(main())

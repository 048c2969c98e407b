"""DiDi-Instruct (Zheng et al., 2025; Algorithm 1): distil a masked-diffusion teacher into a few-step student.

Each step:
  1. draw τ ~ π(t); roll the student out on its own N-step grid from t = 1 to τ
     (z_τ), then jump to a clean x ~ p_ν(· | z_τ)  — the score decomposition (eq. 9);
  2. take teacher samples x' of the same shape (a seeded bank generated once);
  3. corrupt x and x' at the same τ (coupled time) and update the discriminator
     D_λ with balanced BCE (eq. 8), per position over the reward region (eq. 17);
  4. reward R = mean masked-position logit of D (eq. 6), normalised within each
     group (eq. 7) and clipped; update the student with the policy gradient
     E[ ω(τ)/π(τ) · R̃ · ∇(log P_ν(z_τ | m) + log p_ν(x | z_τ)) ] (eq. 5 + 9),
     plus forward KL(p_θ ‖ p_ν) and an entropy bonus at z_1 and z_τ (App. E.5).
     Scores, KL and entropy use the distributions the sampler really draws from
     (suppressed tokens, e.g. non-standard residues, renormalised away).
During the first ``disc_warmup`` steps only D learns (student frozen). Both
networks use AdamW (weight decay 0.01) with linear warm-up then linear decay
(App. D.4, E.9); the exported student is a bias-corrected EMA (core/ema.py).

Every component can be switched off for ablations (``DidiConfig``).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from protein_didi.core.discriminator import Discriminator, mean_masked_logit, per_position_bce
from protein_didi.core.distill_base import ABLATIONS, OPTIMISATION, DistillConfig, DistillTrainer
from protein_didi.core.loop import STATE_FILE, TrainingDiverged
from protein_didi.core.masking import corrupt
from protein_didi.core.rollout import Rollout, rollout_to, sample_clean
from protein_didi.core.sampler import without_suppressed
from protein_didi.core.settings import redefault, setting
from protein_didi.core.timesampling import TIME_DISTRIBUTIONS, TimeSampler


@dataclass(kw_only=True)
class DidiConfig(DistillConfig):
    """DiDi-Instruct settings; defaults follow the paper's protein run (App. E.9) unless noted.

    ``lr_aux`` is the discriminator's learning rate (paper: 5e-6). ``regularization=False`` zeroes the KL and
    entropy weights (``--no-regularization``), so the trainer and the recorded settings read the weights it used.
    """

    lr_aux: float = redefault(
        DistillConfig, "lr_aux", 5e-6, flag="--lr-disc", help="didi: discriminator AdamW lr (paper: 5e-6)",
        group=OPTIMISATION,
    )  # fmt: skip
    reward_clip: float = setting(5.0, "clip normalised rewards to ±this", "--reward-clip", group=OPTIMISATION)
    disc_warmup: int = setting(100, "iterations training only D (student frozen)", "--disc-warmup", group=OPTIMISATION)
    # not in the paper: train D's head on the frozen teacher's features (see core/discriminator.py)
    disc_head_only: bool = setting(
        False,
        "didi: train D's head on the frozen teacher's features (not the paper's full D): the student ships a "
        "few-MB discriminator and D's update needs no backward pass through the backbone",
        "--disc-head-only",
        group=OPTIMISATION,
    )
    # not in the paper: the stabilisers a sharp teacher bank needs (see per_position_bce and DiscriminatorWon)
    disc_label_smoothing: float = setting(
        0.0,
        "didi: D's BCE targets 1−ε / ε, bounding its logit (and the reward) by ±log((1−ε)/ε) (default {default})",
        "--disc-label-smoothing",
        group=OPTIMISATION,
    )
    collapse_accuracy: float = setting(
        0.98,
        "didi: stop when D's accuracy stays ≥ this for --collapse-patience student updates (default {default})",
        "--collapse-accuracy",
        group=OPTIMISATION,
    )
    collapse_patience: int = setting(
        25,
        "didi: student updates D may win in a row before the run stops, keeping its last checkpoint (0: never stop)",
        "--collapse-patience",
        group=OPTIMISATION,
    )
    kl_weight: float = setting(
        0.05, "forward KL(teacher‖student) weight ({default})", "--kl-weight", group=OPTIMISATION
    )
    entropy_weight: float = setting(
        5e-4, "student entropy bonus weight ({default})", "--entropy-weight", group=OPTIMISATION
    )
    # None: Beta(2,5) for ≤16-step students, Beta(5,2) above
    time_dist: str | None = setting(
        None,
        "π(t) for τ (default: beta25 for ≤16-step students, beta52 above; uniform = ablation)",
        "--time-dist",
        choices=sorted(TIME_DISTRIBUTIONS),
        group=ABLATIONS,
    )
    omega: str = setting("elbo", "ω(t): −α'/(1−α) or 1 (ablation)", "--omega", choices=["elbo", "one"], group=ABLATIONS)
    grouped_norm: bool = setting(True, "use raw rewards (no (R−μ)/σ per group)", "--no-grouped-norm", group=ABLATIONS)
    score_decompose: bool = setting(True, "one-jump student from all-[MASK]", "--no-score-decompose", group=ABLATIONS)
    coupled_time: bool = setting(True, "draw D's corruption time independently", "--no-coupled-time", group=ABLATIONS)
    regularization: bool = setting(True, "drop the KL and entropy terms", "--no-regularization", group=ABLATIONS)
    # not in the paper: score the trajectory on a random subset of its intermediate steps (see path_steps)
    path_samples: int | None = setting(
        None,
        "score the student's trajectory on its first step plus this many later steps, importance-weighted "
        "(unbiased, noisier; default: every step, as the paper)",
        "--path-samples",
        group=ABLATIONS,
    )
    norm_eps: ClassVar[float] = 1e-6  # ε of the grouped normalisation (eq. 7): a constant, not a setting

    def __post_init__(self) -> None:
        if not self.regularization:
            self.kl_weight = self.entropy_weight = 0.0

    def time_sampler(self) -> TimeSampler:
        return TimeSampler(self.time_dist or TimeSampler.default_for_nfe(self.student_nfe), self.omega)


def normalize_rewards(rewards: torch.Tensor, group_size: int, eps: float = 1e-6) -> torch.Tensor:
    """(R − μ_g)/(σ_g + ε) within consecutive groups of ``group_size`` (eq. 7, population σ)."""
    if rewards.numel() % group_size:
        raise ValueError(f"batch of {rewards.numel()} does not split into groups of {group_size}")
    g = rewards.view(-1, group_size)
    mu = g.mean(dim=1, keepdim=True)
    sigma = g.std(dim=1, unbiased=False, keepdim=True)
    return ((g - mu) / (sigma + eps)).view(-1)


def path_steps(num_steps: int, samples: int | None, generator: torch.Generator) -> tuple[list[int], list[float]]:
    """Which roll-out steps the score ∇log P_ν(z_τ | m) is computed on, and their weights.

    Deliberate deviation (off by default, ``samples=None``): the paper scores every step of the student's
    trajectory, a gradient pass over all k + 1 states that is ~70 % of an iteration on a CPU. Keeping step 0
    (z_1, where the KL and entropy terms also read the student) and ``samples`` of the k − 1 later steps drawn
    without replacement, each weighted (k − 1)/samples, is an unbiased estimate of the same sum, with more variance.
    """
    if samples is None or num_steps - 1 <= samples:
        return list(range(num_steps)), [1.0] * num_steps
    if samples < 1:
        raise ValueError(f"path samples must be ≥ 1, got {samples}")
    later = (torch.randperm(num_steps - 1, generator=generator)[:samples] + 1).sort().values.tolist()
    return [0, *later], [1.0] + [(num_steps - 1) / samples] * samples


def forward_kl_and_entropy(
    log_p_teacher: torch.Tensor, log_p_student: torch.Tensor, where: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean over ``where`` positions of KL(p_θ ‖ p_ν) and of the student's entropy H(p_ν)."""
    p_t = log_p_teacher.exp()
    kl = (p_t * (log_p_teacher - log_p_student)).sum(-1)
    entropy = -(log_p_student.exp() * log_p_student).sum(-1)
    n = where.sum().clamp_min(1)
    return (kl * where).sum() / n, (entropy * where).sum() / n


class DiscriminatorWon(TrainingDiverged):
    """D separated student from teacher samples for too many updates in a row: the student's reward carries no
    signal any more and it drifts (earlier runs fell into one chain type within ~70 updates)."""


class DidiTrainer(DistillTrainer):
    """One DiDi-Instruct iteration per ``train_step``; plugs into :func:`protein_didi.core.loop.run_training`."""

    method = "didi"
    config_type = DidiConfig
    cfg: DidiConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.disc: Discriminator = self.aux
        self.times = self.cfg.time_sampler()
        self._z1_cache: dict[tuple[tuple[int, ...], bytes], torch.Tensor] = {}
        self.won_streak = 0  # consecutive student updates with D's accuracy ≥ cfg.collapse_accuracy

    def build_aux(self) -> Discriminator:
        if self.cfg.disc_head_only:
            return Discriminator(self.teacher, frozen_backbone=True)
        return Discriminator(copy.deepcopy(self.teacher))

    def student_updates(self) -> int:
        return self.cfg.steps - self.cfg.disc_warmup  # the student is frozen during D's warm-up

    def no_student_updates_reason(self) -> str:
        return (
            f"--disc-warmup {self.cfg.disc_warmup} ≥ --steps {self.cfg.steps}: the student would never train and "
            "the export would be the teacher; lower --disc-warmup or raise --steps"
        )

    # -- one iteration ---------------------------------------------------------------------------------------------
    def _play(self, step: int, group: int, key: Hashable) -> Play:
        """Step 1–3 inputs for one group: student sample via its own trajectory, teacher sample, both corrupted at τ."""
        cfg, mask_id, suppress = self.cfg, self.teacher.mask_id, self.prompts.suppress
        gen, cpu_gen = self.generators(step, group)
        z1, fixed = (a.to(self.device) for a in self.prompts.template(key, self.group))
        generated = ~fixed
        tau = self.times.sample(self.group, cpu_gen, self.device)
        tau_traj = tau if cfg.score_decompose else torch.ones_like(tau)  # ablation: one jump from all-[MASK]
        roll = rollout_to(
            self.student, z1, fixed, self.schedule, cfg.student_nfe, tau_traj, gen, suppress, self.ctx.sharded
        )
        # x needs its own no-grad pass at z_τ: D is updated on x before the student's gradient pass, which under
        # DDP must run group by group inside its sync context (costs one forward of the N+1 per group)
        with torch.no_grad():
            x = sample_clean(self.student(roll.z_tau, tau_traj), roll.z_tau, mask_id, gen, suppress)
        x_teacher = self.bank.draw(key, self.group, cpu_gen).to(self.device)
        tau_d = tau if cfg.coupled_time else self.times.sample(self.group, cpu_gen, self.device)
        z_student = corrupt(x, tau_d, self.schedule, mask_id, generated, gen)
        z_teacher = corrupt(x_teacher, tau_d, self.schedule, mask_id, generated, gen)
        steps, weights = path_steps(len(roll.states), cfg.path_samples, cpu_gen)
        return Play(z1, generated, tau, tau_traj, roll, x, tau_d, z_student, z_teacher, steps, weights)

    def _student_loss(self, play: Play, reward: torch.Tensor, out: dict[str, list[float]]) -> torch.Tensor:
        """Eq. 5 + 9 for one group: ω/π · R̃ · ∇(log P_ν(z_τ | m) + log p_ν(x | z_τ)), plus KL and entropy."""
        cfg, mask_id, roll, suppress = self.cfg, self.teacher.mask_id, play.roll, self.prompts.suppress
        shaped = normalize_rewards(reward, self.group, cfg.norm_eps) if cfg.grouped_norm else reward
        shaped = shaped.clamp(-cfg.reward_clip, cfg.reward_clip)
        weight = self.times.weights(play.tau_d, self.schedule)

        nxt, rev = roll.next_states(), roll.revealed
        states = [roll.states[i] for i in play.steps] + [roll.z_tau]
        times = [roll.times[i] for i in play.steps] + [play.tau_traj]
        log_p = self.student_ddp(torch.cat(states), torch.cat(times)).view(len(states), *play.z1.shape, -1)
        # the roll-out drew tokens with suppressed ones renormalised away: score under that same distribution
        log_p = without_suppressed(log_p, suppress)
        # score per generated position, so lengths weigh equally
        path_lp = sum(
            w * (lp.gather(-1, nxt[i].unsqueeze(-1)).squeeze(-1) * rev[i]).sum(-1)
            for lp, i, w in zip(log_p[:-1], play.steps, play.weights, strict=True)
        )
        final_mask = (roll.z_tau == mask_id) & play.generated
        final_lp = (log_p[-1].gather(-1, play.x.unsqueeze(-1)).squeeze(-1) * final_mask).sum(-1)
        score = (path_lp + final_lp) / play.generated.sum(-1).clamp_min(1)
        pg_loss = (weight * shaped * score).mean()

        # regularisers at both decomposition steps: z_1 (all masked) and z_τ
        with torch.no_grad():
            teacher_z1 = self._teacher_at_z1(play.z1)
            log_p_teacher = torch.cat(
                [teacher_z1, without_suppressed(self.teacher(roll.z_tau, play.tau_traj), suppress)]
            )
        reg_where = torch.cat([play.z1 == mask_id, roll.z_tau == mask_id]) & play.generated.repeat(2, 1)
        kl, entropy = forward_kl_and_entropy(log_p_teacher, torch.cat([log_p[0], log_p[-1]]), reg_where)
        for name, value in (("pg_loss", pg_loss), ("kl", kl), ("entropy", entropy)):
            out[name].append(value.item())
        return pg_loss + cfg.kl_weight * kl - cfg.entropy_weight * entropy

    def _teacher_at_z1(self, z1: torch.Tensor) -> torch.Tensor:
        """p_θ(x | z_1) for an all-masked prompt: the same for every iteration with this prompt, so computed once."""
        key = (tuple(z1.shape), z1.cpu().numpy().tobytes())
        if key not in self._z1_cache:
            t1 = torch.ones(z1.shape[0], device=z1.device)
            self._z1_cache[key] = without_suppressed(self.teacher(z1, t1), self.prompts.suppress)
        return self._z1_cache[key]

    def train_step(self, step: int) -> dict[str, float]:
        cfg, mask_id = self.cfg, self.teacher.mask_id
        key = self.prompts.draw_key(step)  # one prompt shape per step, shared by all groups on all ranks
        plays = [self._play(step, g, key) for g in self.my_groups]
        z_student = torch.cat([p.z_student for p in plays])
        tau_d = torch.cat([p.tau_d for p in plays])
        generated = torch.cat([p.generated for p in plays])

        # 3. update D with balanced BCE on this rank's groups in one forward (DDP averages over ranks)
        z_teacher = torch.cat([p.z_teacher for p in plays])
        both = torch.cat([z_student, z_teacher])
        d_stats: dict[str, torch.Tensor] = {}

        def d_loss() -> torch.Tensor:
            logits = self.aux_ddp(both, tau_d.repeat(2))
            l_s, l_t = logits.chunk(2)
            r_s, r_t = mean_masked_logit(logits, both, generated.repeat(2, 1), mask_id).chunk(2)
            d_stats.update(r_s=r_s.detach(), r_t=r_t.detach())
            eps = cfg.disc_label_smoothing
            bce_s = per_position_bce(l_s, z_student, generated, mask_id, is_student=True, smoothing=eps)
            return bce_s + per_position_bce(l_t, z_teacher, generated, mask_id, is_student=False, smoothing=eps)

        metrics: dict[str, float] = {}
        metrics["d_grad_norm"], metrics["d_loss"] = self.update_aux([d_loss])
        r_s, r_t = d_stats["r_s"], d_stats["r_t"]
        metrics["d_acc"] = 0.5 * ((r_s > 0).float().mean() + (r_t < 0).float().mean()).item()
        self._watch_collapse(step, metrics["d_acc"])

        # 4. reward from the updated D; student update, group by group
        with torch.no_grad():
            rewards = self.disc.reward(z_student, tau_d, generated).split(self.group)
        parts: dict[str, list[float]] = {"pg_loss": [], "kl": [], "entropy": []}
        losses = [functools.partial(self._student_loss, p, r, parts) for p, r in zip(plays, rewards, strict=True)]
        if step >= cfg.disc_warmup:
            metrics["s_grad_norm"], _ = self.update_student(losses)
        else:  # D warm-up: the student stays frozen; its loss terms are still logged
            with torch.no_grad():
                for loss_fn in losses:
                    loss_fn()
        metrics.update({k: sum(v) / len(v) for k, v in parts.items()})
        metrics["loss"] = metrics["pg_loss"] + cfg.kl_weight * metrics["kl"] - cfg.entropy_weight * metrics["entropy"]
        metrics.update(
            reward_student=r_s.mean().item(),
            reward_teacher=r_t.mean().item(),
            tau=torch.cat([p.tau for p in plays]).mean().item(),
        )
        describe = getattr(self.prompts, "describe", None)  # the domain's view of the student's samples
        if describe is not None:
            metrics.update(describe(torch.cat([p.x for p in plays])))
        return metrics

    def _watch_collapse(self, step: int, d_acc: float) -> None:
        """Stop (keeping the last checkpoint) once D has won ``collapse_patience`` student updates in a row."""
        cfg = self.cfg
        if step < cfg.disc_warmup or cfg.collapse_patience < 1:
            return  # D is meant to pull ahead while it warms up
        self.won_streak = self.won_streak + 1 if d_acc >= cfg.collapse_accuracy else 0
        if self.won_streak >= cfg.collapse_patience:
            raise DiscriminatorWon(
                f"the discriminator won {self.won_streak} student updates in a row (accuracy ≥ "
                f"{cfg.collapse_accuracy}, steps {step - self.won_streak + 1}–{step}): the student is collapsing; "
                f"the last checkpoint is kept in {STATE_FILE} (export it with --resume --steps <its step>), or "
                "rerun with a lower --lr-disc or a higher --disc-label-smoothing"
            )

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "won_streak": self.won_streak}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.won_streak = int(state.get("won_streak", 0))  # checkpoints older than the collapse watch have none


@dataclass
class Play:
    """One group's inputs to the discriminator and student updates (no gradients attached)."""

    z1: torch.Tensor
    generated: torch.Tensor
    tau: torch.Tensor
    tau_traj: torch.Tensor
    roll: Rollout
    x: torch.Tensor
    tau_d: torch.Tensor
    z_student: torch.Tensor
    z_teacher: torch.Tensor
    steps: list[int]  # roll-out steps the score is computed on (all, unless path_samples)
    weights: list[float]

"""Where a distillation's generation starts and what it is compared with: prompts and a seeded teacher-sample bank.

A domain supplies a :class:`PromptSource` (what to generate: shapes, fixed
positions, tokens never to emit); :class:`TeacherBank` draws the teacher's
samples of the same shapes, the reference both DiDi-Instruct's discriminator and
IDLM's student input are built from.
"""

from __future__ import annotations

import zlib
from collections.abc import Hashable
from typing import Protocol

import torch

from protein_didi.core.denoiser import Denoiser
from protein_didi.core.loop import step_seed
from protein_didi.core.sampler import SamplerConfig, ancestral_sample
from protein_didi.core.schedule import NoiseSchedule


class PromptSource(Protocol):
    """Where generation starts: all-[MASK] templates with their fixed positions.

    A source may also carry ``describe``: tokens → a few named shares, logged per step for the student's samples
    (DiDi-Instruct reads it with ``getattr``; antibody prompts report the chain mix).
    """

    suppress: tuple[int, ...]

    def draw_key(self, step: int) -> Hashable:
        """The template shape for a training step (e.g. a sequence length), a pure function of ``step``."""

    def template(self, key: Hashable, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` start sequences ``z`` (masked where generated) and the (n, L) bool ``fixed`` mask."""


class TeacherBank:
    """Teacher samples per template key, generated lazily in chunks seeded by (seed, key, chunk).

    Sample i of key k is therefore the same whenever it is generated, which
    keeps resumed runs exact and lets all steps share one pass of the teacher.
    """

    def __init__(
        self,
        teacher: Denoiser,
        schedule: NoiseSchedule,
        prompts: PromptSource,
        nfe: int,
        size: int,
        seed: int,
        device: torch.device,
        chunk: int = 32,
    ) -> None:
        self.teacher, self.schedule, self.prompts = teacher, schedule, prompts
        self.config = SamplerConfig(nfe, suppress=prompts.suppress)
        self.size, self.seed, self.device, self.chunk = size, seed, device, chunk
        self._chunks: dict[tuple[Hashable, int], torch.Tensor] = {}

    def _get_chunk(self, key: Hashable, c: int) -> torch.Tensor:
        if (key, c) not in self._chunks:
            z, fixed = self.prompts.template(key, self.chunk)
            # crc32, not hash(): Python salts str hashes per process, and every rank (and a resumed run) must agree
            stream = zlib.crc32(repr(("bank", key)).encode())
            gen = torch.Generator(device=self.device).manual_seed(step_seed(self.seed, c, stream))
            self._chunks[key, c] = ancestral_sample(
                self.teacher, z.to(self.device), fixed.to(self.device), self.schedule, self.config, gen
            )
        return self._chunks[key, c]

    def preload(self, key: Hashable, samples: torch.Tensor) -> None:
        """Use ``samples`` (≥ ``size`` teacher samples of template ``key``, tokenised) instead of generating them.

        Teacher sampling dominates a CPU run's start (a 64-step bank of 32 antibodies: ~7 min on 2 cores), so a
        run may reuse the samples of a benchmark or an earlier run made by the same teacher.
        """
        template, _ = self.prompts.template(key, 1)
        if samples.dim() != 2 or samples.shape[1] != template.shape[1]:
            raise ValueError(
                f"teacher samples for {key!r} have shape {tuple(samples.shape)}, template {tuple(template.shape)}"
            )
        if len(samples) < self.size:
            raise ValueError(f"{len(samples)} teacher samples for {key!r}, the bank needs {self.size}")
        for c in range(-(-self.size // self.chunk)):
            self._chunks[key, c] = samples[c * self.chunk : (c + 1) * self.chunk].to(self.device)

    def draw(self, key: Hashable, n: int, generator: torch.Generator) -> torch.Tensor:
        idx = torch.randint(0, self.size, (n,), generator=generator).tolist()
        return torch.stack([self._get_chunk(key, i // self.chunk)[i % self.chunk] for i in idx])

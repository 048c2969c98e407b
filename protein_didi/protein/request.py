"""A protein sampling request: the core request plus lengths, fixed residues (motif) or a CDR redesign plan.

The CLI, the app and the benchmarks each build one :class:`ProteinRequest`; it refuses bad values when it
is made (before a model loads) and :meth:`ProteinRequest.fitted` adds the checks that need the model
(its sampler defaults, its positional limit, a discriminator for RGAS). A ``corrector`` names a second protein
denoiser (e.g. the teacher) for the request's correction rounds; :meth:`ProteinRequest.check_corrector` checks it
fits the model and the request (same alphabet, enough positions) once it is loaded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Self

import torch

from protein_didi.core.request import SampleRequest
from protein_didi.protein.alphabet import ALPHABET, MAX_RESIDUES, InvalidSequenceError
from protein_didi.protein.cdr_plan import RedesignPlan
from protein_didi.protein.liabilities import LIABILITY_CLASSES
from protein_didi.protein.pretrained import LoadedModel

Length = int | str | tuple[int, int]  # N residues, "auto" (training distribution) or (lo, hi) uniform


@dataclass(frozen=True)
class Motif:
    """Residues fixed at 1-based positions; the sampler fills in the rest around them."""

    residues: dict[int, str]

    @classmethod
    def parse(cls, spec: str | None = None, prefix: str | None = None) -> Motif | None:
        """From ``"5:WW,40:C"`` (segments at 1-based starts) and/or a prefix (segment at position 1)."""
        residues: dict[int, str] = {}
        segments: list[tuple[int, str]] = []
        if prefix is not None:
            if not prefix.strip():
                raise InvalidSequenceError("prefix is empty; give residues such as MKT or leave it out")
            segments.append((1, prefix))
        if spec is not None:
            if not spec.strip():
                raise InvalidSequenceError("motif is empty; use POSITION:RESIDUES, e.g. 5:WW,40:C")
            for part in spec.split(","):
                m = re.fullmatch(r"\s*(\d+)\s*:\s*([A-Za-z]+)\s*", part)
                if m is None:
                    raise InvalidSequenceError(f"motif part {part.strip()!r} is not POSITION:RESIDUES (e.g. 5:WW)")
                segments.append((int(m.group(1)), m.group(2)))
        for start, seg in segments:
            if start < 1:
                raise InvalidSequenceError(f"motif position {start} must be ≥ 1 (positions are 1-based)")
            seg = ALPHABET.validate(seg, f"motif at {start}")
            for k, aa in enumerate(seg):
                residues[start + k] = aa
        return cls(residues) if residues else None

    @property
    def span(self) -> int:
        return max(self.residues)

    def apply(self, tokens: torch.Tensor, fixed: torch.Tensor) -> None:
        """Write the motif into ``<cls>``-prefixed token rows and mark it fixed (in place)."""
        for pos, aa in self.residues.items():
            tokens[:, pos] = ALPHABET.esm.get_idx(aa)
            fixed[:, pos] = True


def trained_max_residues(info: dict) -> int:
    """The longest protein a model was trained on (its crop length; ESM's limit when it does not say).

    ``"auto"`` lengths are drawn up to it; a model may still place more (:func:`position_limit`).
    """
    return int(info.get("max_residues", MAX_RESIDUES))


def position_limit(loaded: LoadedModel) -> int:
    """Most residues ``loaded`` can place: its own positional limit (BERT-style models), else ESM's 1022."""
    return int(getattr(loaded.model, "max_residues", MAX_RESIDUES))


@dataclass(frozen=True, kw_only=True)
class ProteinRequest(SampleRequest):
    """What to generate: ``num`` proteins of ``length`` (with an optional ``motif``), or, given a CDR redesign
    ``plan``, ``num`` designs of that parent (``length`` and ``motif`` unused), refusing ``liabilities`` in the
    redesigned loops. ``max_tokens`` caps the padded tokens of one forward pass (long proteins, small laptops).
    ``corrector`` (a model name or folder) redraws the residues the ``corrector_steps`` rounds remask; None: the
    sampling model itself.
    """

    length: Length = 100
    motif: Motif | None = None
    plan: RedesignPlan | None = None
    liabilities: tuple[str, ...] = ()
    max_tokens: int | None = None
    corrector: str | None = None

    teacher_nfe = 64

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "liabilities", tuple(dict.fromkeys(self.liabilities)))
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError(f"max tokens per batch must be ≥ 1, got {self.max_tokens}")
        if self.corrector is not None and not self.corrector.strip():
            raise ValueError("corrector is empty; give a model name (e.g. antiberty) or folder, or leave it out")
        if self.corrector is not None and self.corrector_steps == 0:
            raise ValueError("a corrector model needs correction rounds; give corrector steps ≥ 1 (--corrector-steps)")
        if self.plan is not None:
            if self.motif is not None:
                raise ValueError("a motif or prefix does not combine with CDR redesign: the parent's framework is kept")
            unknown = sorted(set(self.liabilities) - set(LIABILITY_CLASSES))
            if unknown:
                raise ValueError(f"liability classes {unknown}: choose from {', '.join(LIABILITY_CLASSES)}")
            return
        if self.liabilities:
            raise ValueError("the liability filter applies to CDR redesigns; give a parent and the CDRs to redesign")
        if self.length == "auto":
            return
        lo, hi = self.length if isinstance(self.length, tuple) else (self.length, self.length)
        if not 1 <= int(lo) <= int(hi) <= MAX_RESIDUES:
            raise ValueError(
                f"length {lo if lo == hi else f'{lo}-{hi}'} is out of range; choose 1..{MAX_RESIDUES} residues "
                "(1024 tokens with <cls> and <eos>)"
            )
        if self.motif is not None and self.motif.span > int(lo):
            raise InvalidSequenceError(
                f"motif reaches position {self.motif.span} but a sequence has only {lo} residues"
            )

    def longest(self, info: dict) -> int:
        """Residues of the longest sequence this request can produce (``"auto"``: the model's training cap)."""
        if self.plan is not None:
            return self.plan.longest
        if isinstance(self.length, tuple):
            return self.length[1]
        if self.length == "auto":
            return trained_max_residues(info)
        return int(self.length)

    def for_model(self, info: Mapping, role: str) -> Self:
        """As :meth:`SampleRequest.for_model`, except that CDR redesign does not take a model's stored sampler
        settings: they were chosen on whole chains (the frontier's validation split) and never validated on
        redesign, so redesign keeps the plain role defaults unless flags say otherwise."""
        if self.plan is not None:
            info = {k: v for k, v in info.items() if k != "sampling"}
        return super().for_model(info, role)

    def fitted(self, loaded: LoadedModel) -> Self:
        """As :meth:`SampleRequest.fitted`, and every design checked against the model's positional limit."""
        request = super().fitted(loaded)
        limit = position_limit(loaded)
        if self.plan is not None:
            self.plan.check_fits(limit)
        elif self.length != "auto" and self.longest(loaded.info) > limit:
            raise InvalidSequenceError(
                f"length {self.longest(loaded.info)} exceeds this model's {limit} residues; choose a length ≤ {limit}"
            )
        if request.corrector is not None and request.corrector_steps == 0:
            raise ValueError("a corrector model needs correction rounds; give corrector steps ≥ 1 (--corrector-steps)")
        return request

    def check_corrector(self, loaded: LoadedModel, corrector: LoadedModel) -> None:
        """One-line errors unless ``corrector`` can redraw ``loaded``'s designs: same alphabet, enough positions."""
        model, other = loaded.model, corrector.model
        if (other.vocab_size, other.mask_id) != (model.vocab_size, model.mask_id):
            raise ValueError(
                f"corrector '{corrector.name}' has {other.vocab_size} tokens ([MASK] = {other.mask_id}), model "
                f"'{loaded.name}' {model.vocab_size} ([MASK] = {model.mask_id}); a corrector must share its alphabet"
            )
        limit, longest = position_limit(corrector), self.longest(loaded.info)
        if longest > limit:
            raise InvalidSequenceError(
                f"designs reach {longest} residues but corrector '{corrector.name}' places at most {limit}; "
                f"choose lengths ≤ {limit} or another corrector"
            )

"""A text sampling request: the core request plus the block length (``<bos>``/``<eos>`` ends counted)."""

from __future__ import annotations

from dataclasses import dataclass

from protein_didi.core.request import SampleRequest


@dataclass(frozen=True, kw_only=True)
class TextRequest(SampleRequest):
    """``num`` blocks of ``length`` tokens (None: the model's training block length), as MDLM's blocks are."""

    num: int = 4
    length: int | None = None

    teacher_nfe = 128  # MDLM-style text teachers are sampled with more steps than protein ones

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.length is not None and self.length < 3:
            raise ValueError(f"text length must be ≥ 3 tokens (<bos>, text, <eos>), got {self.length}")

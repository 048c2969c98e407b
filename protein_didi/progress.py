"""A progress bar that appears only when work starts, shared by the sample CLIs of both domains.

Created on the first ``progress(done, total)`` call, so an argument refused
before sampling prints its one-line error on a clean line, not after a
half-drawn bar.
"""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm


class LazyBar:
    """``progress(done, total)`` callback backed by a tqdm bar on stderr, opened on first use."""

    def __init__(self, desc: str = "", unit: str = "step") -> None:
        self.desc, self.unit = desc, unit
        self.bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.desc, unit=self.unit, file=sys.stderr)
        self.bar.total, self.bar.n = total, done
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

"""A tqdm bar for folds whose rate is honest: cached folds count as done at the start, not as speed.

Every folder calls ``progress(done, total)`` (:data:`~protein_didi.fold.result.ProgressCallback`): once with the
cached count before anything folds, then after each batch (one chain on CPU). Setting ``bar.n`` directly, as the
report did, made tqdm divide cached folds by the elapsed time, and a bar reused by several ``fold`` calls with
other totals jumped backwards. :class:`FoldProgress` starts the bar at the cached count (tqdm's ``initial``, left
out of the rate), adds only what was folded since, and keeps one running count over several ``fold`` calls.
"""

from __future__ import annotations

import sys
from typing import IO, Any

from tqdm import tqdm


class FoldProgress:
    """``progress(done, total)`` callback drawing one tqdm bar (per chain) over any number of ``fold`` calls.

    Use as a context manager (the bar closes on exit) or call :meth:`close`. ``offset`` and ``base`` carry the
    counts of earlier calls, so a second ``fold`` call continues the bar instead of restarting it.
    """

    def __init__(self, desc: str, unit: str = "chain", file: IO[str] | None = None, **tqdm_kwargs: Any) -> None:
        self.desc = desc
        self.unit = unit
        self.file = file if file is not None else sys.stderr
        self.kwargs = tqdm_kwargs
        self.bar: tqdm | None = None
        self._done = 0  # (done, total) last reported by the current fold call
        self._total = 0

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:  # the cache's folds are the starting point, not speed
            self.bar = tqdm(total=total, initial=done, desc=self.desc, unit=self.unit, file=self.file, **self.kwargs)
        elif done < self._done or total != self._total or self._done == self._total:  # another fold call
            self.bar.total += total
            self.bar.initial += done
            self.bar.n += done
            self.bar.refresh()
        else:
            self.bar.update(done - self._done)
        self._done, self._total = done, total

    @property
    def n(self) -> int:
        return int(self.bar.n) if self.bar is not None else 0

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> FoldProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

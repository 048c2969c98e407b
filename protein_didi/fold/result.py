"""What every folding backend returns, and the errors they share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from protein_didi.protein.pretrained import ModelNotFoundError

ProgressCallback = Callable[[int, int], None]
SCORES = {"plddt": "pLDDT (0–100, higher = more confident)", "prmsd": "predicted RMSD (Å, lower = more confident)"}


class FoldingUnavailable(ModelNotFoundError):
    """A backend's weights or dependencies are not on this machine; the one-line message says how to get them."""


@dataclass
class FoldResult:
    """One folded sequence: the backend's mean confidence, its per-residue values and the PDB text.

    ``score`` names the scale (:data:`SCORES`): ESMFold's pLDDT (``mean`` is its
    own mean over all predicted atoms, ``per_residue`` the CA atoms') or IgFold's
    predicted RMSD (per residue, Å; the PDB's B-factors carry the same values).
    """

    sequence: str
    mean: float
    per_residue: np.ndarray
    pdb: str
    score: str = "plddt"

    @property
    def mean_plddt(self) -> float:
        """ESMFold's name for :attr:`mean`."""
        return self.mean

    @property
    def plddt(self) -> np.ndarray:
        """ESMFold's name for :attr:`per_residue`."""
        return self.per_residue

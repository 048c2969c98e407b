"""Antibody models hand out coherent chains: draw, check every chain, resample the chimeras and broken frames.

About one default design in ten to twenty from an antibody student is a heavy/light chimera or has no
functional J (:mod:`protein_didi.protein.chain_validity`), and an engineer given one would rightly call it
not an antibody. ``sample`` therefore keeps drawing until it has the number asked of valid chains
(:func:`protein_didi.core.resample.resample_until`: the first round is the unfiltered draw with the
request's seed, so the valid sequences of an unfiltered run are kept as they are) and prints the account;
``--allow-invalid`` turns this off.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from protein_didi.core.request import ProgressCallback
from protein_didi.core.resample import resample_until
from protein_didi.protein.chain_validity import ChainCheck, check_chain
from protein_didi.protein.engineer_checks import DesignChecks, check_designs
from protein_didi.protein.generate import generate
from protein_didi.protein.numbering import AntibodyError, AntibodyNumbering, number_antibodies, require_anarci
from protein_didi.protein.pretrained import LoadedModel
from protein_didi.protein.request import ProteinRequest

MAX_DRAWS_PER_CHAIN = 20
"""Resampling stops after this many draws per chain asked for: a model that makes no valid chains must end."""


@dataclass
class ValidChains:
    """The valid chains kept, and what it took: drawn = kept + refused + surplus."""

    sequences: list[str]
    asked: int
    drawn: int
    refused: Counter[str]  # status (chimera, invalid) → refused chains
    surplus: int = 0
    numberings: list[AntibodyNumbering] = field(default_factory=list)  # of ``sequences``: no second ANARCI run

    def checks(self) -> list[DesignChecks]:
        """The engineer's checks of every kept chain (canonical residues, CDR lengths vs the repertoire)."""
        return check_designs(self.numberings)

    def summary(self) -> str:
        """One line: kept of asked, drawn, refused by kind, and a shortfall if any."""
        names = {"chimera": "heavy/light chimera", "invalid": "frame error"}
        kinds = ", ".join(f"{n} {names[k]}{'s' if n > 1 else ''}" for k, n in self.refused.items())
        line = f"{len(self.sequences)} of {self.asked} sequences are valid antibody chains; {self.drawn} drawn"
        if kinds:
            line += f", {kinds} refused and resampled"
        if self.surplus:
            line += f", {self.surplus} valid extra{'s' if self.surplus > 1 else ''} not kept"
        if len(self.sequences) < self.asked:
            line += f"; stopped after {self.drawn} draws ({MAX_DRAWS_PER_CHAIN} per chain): try --sampler confidence"
        return line


def generate_valid_chains(
    loaded: LoadedModel, request: ProteinRequest, progress: ProgressCallback | None = None, max_draws: int | None = None
) -> ValidChains:
    """``request.num`` sequences that are valid antibody chains (chimeras and frame errors resampled).

    Checks that ANARCI can run before the first draw, so a missing install costs no sampling time.
    """
    try:
        require_anarci()
    except AntibodyError as err:
        raise AntibodyError(f"{err}; or keep every chain with --allow-invalid (no chain check)") from None

    def draw(size: int, seed: int) -> list[tuple[str, AntibodyNumbering, ChainCheck]]:
        seqs = generate(loaded, request.replace(num=size, seed=seed), progress)
        return [(s, n, check_chain(n)) for s, n in zip(seqs, number_antibodies(seqs), strict=True)]

    def refuse(candidate: tuple[str, AntibodyNumbering, ChainCheck]) -> str | None:
        return None if candidate[2].valid else candidate[2].status

    limit = max_draws if max_draws is not None else MAX_DRAWS_PER_CHAIN * request.num
    result = resample_until(request.num, draw, refuse, request.seed, limit)
    refused = Counter(str(reason) for _, reason in result.refused)
    kept = result.kept
    return ValidChains(
        [s for s, _, _ in kept], request.num, result.drawn, refused, result.surplus, [n for _, n, _ in kept]
    )

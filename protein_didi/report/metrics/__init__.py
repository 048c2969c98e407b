"""Metric families of the protein report, in the order they are scored and shown.

To add a family (say, antibody CDR metrics): write a module with a
:class:`~protein_didi.report.metrics.base.MetricFamily` subclass and add one
instance to :data:`FAMILIES`.
"""

from __future__ import annotations

from protein_didi.report.metrics.antibody import AntibodyMetrics
from protein_didi.report.metrics.base import NOT_COMPUTED, Column, MetricFamily, Options, Scoring
from protein_didi.report.metrics.checks import EngineerChecks
from protein_didi.report.metrics.clusters import Clusters
from protein_didi.report.metrics.fold import AntibodyStructure, Foldability
from protein_didi.report.metrics.judge import JudgeNLL
from protein_didi.report.metrics.liabilities import Liabilities
from protein_didi.report.metrics.novelty import Novelty
from protein_didi.report.metrics.regions import Regions
from protein_didi.report.metrics.sequence import SequenceStats

FAMILIES: tuple[MetricFamily, ...] = (
    Foldability(),
    JudgeNLL(),
    SequenceStats(),
    Clusters(),
    Novelty(),
    AntibodyMetrics(),
    EngineerChecks(),
    AntibodyStructure(),
    Liabilities(),
    Regions(),
)

__all__ = ["FAMILIES", "NOT_COMPUTED", "Column", "MetricFamily", "Options", "Scoring"]

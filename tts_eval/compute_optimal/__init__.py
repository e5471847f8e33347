"""Compute-optimal test-time scaling: policy tables (which strategy for which difficulty)
and the test-time difficulty estimate, with the paper's difficulty buckets.

The strategy itself is ``tts_eval.strategies.compute_optimal``; the sweep and plan that learn
a table from data sit above the search, in ``tts_eval.planning``.
"""

from tts_eval.compute_optimal.difficulty import BUCKETS, DifficultyModel, ProbeFeatures, bucket_of, probe_features
from tts_eval.compute_optimal.table import (
    DEFAULT_TABLE,
    BudgetPlan,
    Choice,
    PolicyTable,
    Probe,
    ResolvedPlan,
    Rule,
    TableError,
    list_tables,
    load_table,
)

__all__ = [
    "BUCKETS",
    "DEFAULT_TABLE",
    "BudgetPlan",
    "Choice",
    "DifficultyModel",
    "PolicyTable",
    "Probe",
    "ProbeFeatures",
    "ResolvedPlan",
    "Rule",
    "TableError",
    "bucket_of",
    "list_tables",
    "load_table",
    "probe_features",
]

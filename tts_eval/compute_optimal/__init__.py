"""Compute-optimal test-time scaling: policy tables (which strategy for which difficulty),
the test-time difficulty estimate, and the sweep and plan that learn a table from data.

The strategy itself is ``tts_eval.strategies.compute_optimal``; ``tts_eval.compute_optimal.sweep``
and ``tts_eval.compute_optimal.plan`` (imported on use) run a grid and fit a table.
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

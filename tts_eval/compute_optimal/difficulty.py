"""How hard a problem is for a policy: the paper's Pass@1 buckets, and their test-time
estimate from a small probe of sampled, PRM-scored solutions.

A probe of k solutions gives two features:

- ``agreement``: the share of the k solutions whose answer is the most frequent one (answers
  grouped by equivalence); 0 when none has an answer. Easy problems agree.
- ``prm``: the mean of the solutions' aggregated PRM scores (scores a PRM could not read are
  left out; a probe without any readable score counts 0). A PRM rates right solutions higher.

The predicted Pass@1 is ``bias + agreement_weight * agreement + prm_weight * prm``, clipped to
[0, 1]. Its bucket: easy from ``easy_from``, medium from ``medium_from``, else hard; unfitted,
these are the paper's edges (0.5, 0.1). ``tts-eval plan`` fits the weights by least squares
on a sweep, and then the two edges on the estimate so that the predicted bucket is the bucket
of the problem's Pass@1 as often as possible: a least-squares estimate from a few noisy
samples is pulled towards the mean Pass@1 and would rarely cross the paper's edges.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tts_eval.scoring import Aggregation, aggregate
from tts_eval.types import Trajectory
from tts_eval.voting import group_answers

EASY, MEDIUM, HARD = "easy", "medium", "hard"
BUCKETS = (EASY, MEDIUM, HARD)
# Lower edges of easy and medium Pass@1 (the paper's absolute thresholds).
EASY_FROM, MEDIUM_FROM = 0.5, 0.1


def bucket_of(pass_at_1: float) -> str:
    """easy: Pass@1 in [50%, 100%]; medium: [10%, 50%); hard: [0%, 10%)."""
    if pass_at_1 >= EASY_FROM:
        return EASY
    if pass_at_1 >= MEDIUM_FROM:
        return MEDIUM
    return HARD


@dataclass(frozen=True)
class ProbeFeatures:
    agreement: float
    prm: float


def features(classes: Sequence[int | None], scores: Sequence[float]) -> ProbeFeatures:
    """Features of a probe from each solution's answer class (None: no answer) and its
    aggregated PRM score (NaN: unreadable)."""
    if not classes or len(classes) != len(scores):
        raise ValueError(
            f"a probe needs one answer class and one score per solution (got {len(classes)} and {len(scores)})"
        )
    counts = Counter(c for c in classes if c is not None)
    agreement = max(counts.values()) / len(classes) if counts else 0.0
    readable = [s for s in scores if not math.isnan(s)]
    prm = sum(readable) / len(readable) if readable else 0.0
    return ProbeFeatures(agreement, prm)


def probe_features(probe: Sequence[Trajectory], aggregation: Aggregation) -> ProbeFeatures:
    """Features of probe solutions as a search returns them (answers, PRM step scores)."""
    classes = group_answers([t.answer for t in probe])
    return features(classes, [aggregate(t.step_scores, aggregation) for t in probe])


class DifficultyModel(BaseModel):
    """Predicted Pass@1 = clip(bias + agreement * agreement_feature + prm * prm_feature, 0, 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bias: float = Field(default=0.0, description="Constant term")
    agreement: float = Field(default=0.5, description="Weight of the probe's answer agreement")
    prm: float = Field(default=0.5, description="Weight of the probe's mean aggregated PRM score")
    aggregation: Aggregation = Field(
        default="last", description="How a probe solution's step scores become its PRM score"
    )
    easy_from: float = Field(default=EASY_FROM, description="Predicted Pass@1 from which a problem is easy")
    medium_from: float = Field(default=MEDIUM_FROM, description="Predicted Pass@1 from which a problem is medium")

    @model_validator(mode="after")
    def _ordered(self) -> DifficultyModel:
        if self.medium_from > self.easy_from:
            raise ValueError(f"medium_from ({self.medium_from}) must not exceed easy_from ({self.easy_from})")
        return self

    def predict(self, f: ProbeFeatures) -> float:
        value = self.bias + self.agreement * f.agreement + self.prm * f.prm
        return min(1.0, max(0.0, value))

    def bucket(self, f: ProbeFeatures) -> str:
        value = self.predict(f)
        return EASY if value >= self.easy_from else MEDIUM if value >= self.medium_from else HARD


def fit_difficulty_model(
    rows: Sequence[ProbeFeatures], pass_at_1: Sequence[float], aggregation: Aggregation
) -> DifficultyModel:
    """Least-squares weights predicting ``pass_at_1`` from probe features, then the bucket
    edges that make the most predicted buckets right (:func:`fit_edges`). A feature that does
    not vary (e.g. agreement of one-solution probes) gets weight 0."""
    import numpy as np

    if len(rows) != len(pass_at_1) or not rows:
        raise ValueError(f"fitting needs one Pass@1 per probe (got {len(rows)} probes, {len(pass_at_1)} values)")
    x = np.array([[1.0, r.agreement, r.prm] for r in rows])
    y = np.array(pass_at_1, dtype=float)
    varying = [0] + [j for j in (1, 2) if np.ptp(x[:, j]) > 1e-12]
    solution, *_ = np.linalg.lstsq(x[:, varying], y, rcond=None)
    # Four decimals are plenty for a Pass@1 estimate, and keep a table readable.
    weights = dict.fromkeys((0, 1, 2), 0.0) | {j: round(float(w), 4) + 0.0 for j, w in zip(varying, solution)}
    model = DifficultyModel(bias=weights[0], agreement=weights[1], prm=weights[2], aggregation=aggregation)
    medium_from, easy_from = fit_edges([model.predict(r) for r in rows], [bucket_of(p) for p in pass_at_1])
    return model.model_copy(update={"medium_from": medium_from, "easy_from": easy_from})


def fit_edges(predicted: Sequence[float], buckets: Sequence[str], candidates: int = 100) -> tuple[float, float]:
    """(medium_from, easy_from) on the predicted Pass@1 that put the most rows in their
    bucket; among equally good edges, those nearest the paper's (0.1, 0.5). Edges are tried
    midway between (up to ``candidates``) quantiles of the predictions."""
    import numpy as np

    values = np.unique(np.asarray(predicted, dtype=float))
    if len(values) > candidates:
        values = np.unique(np.quantile(values, np.linspace(0.0, 1.0, candidates)))
    edges = np.concatenate(([values[0] - 1e-6], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-6]))
    edges = np.round(edges, 4)
    p = np.asarray(predicted, dtype=float)[:, None]
    truth = np.asarray(buckets)
    at_least = {b: ((p >= edges[None, :]) & (truth[:, None] == b)).sum(axis=0) for b in BUCKETS}
    hard_total = int((truth == HARD).sum())
    # right[m, e] for medium_from = edges[m] <= easy_from = edges[e]
    right = (hard_total - at_least[HARD])[:, None] + at_least[MEDIUM][:, None] - at_least[MEDIUM][None, :]
    right = right + at_least[EASY][None, :]
    m_index, e_index = np.meshgrid(np.arange(len(edges)), np.arange(len(edges)), indexing="ij")
    right = np.where(m_index <= e_index, right, -1)
    distance = np.abs(edges[:, None] - MEDIUM_FROM) + np.abs(edges[None, :] - EASY_FROM)
    best = np.lexsort((distance.ravel(), -right.ravel()))[0]
    m, e = np.unravel_index(best, right.shape)
    return float(edges[m]) + 0.0, float(edges[e]) + 0.0

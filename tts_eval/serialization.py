"""Search results to and from plain JSON-ready dicts.

NaN step scores become null; the prediction is stored as its index among the candidates.
Results written before the PRM reused prefixes have no ``prm_scored_tokens``: their PRM
scored every input in full, so it equals their ``prm_tokens``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from tts_eval.types import SearchResult, Trajectory, Usage


def result_to_dict(result: SearchResult) -> dict[str, Any]:
    return {
        "answer": result.answer,
        "prediction_index": _index_of(result.prediction, result.candidates),
        "candidates": [_trajectory_to_dict(c) for c in result.candidates],
        "usage": dataclasses.asdict(result.usage),
    }


def result_from_dict(data: dict[str, Any]) -> SearchResult:
    candidates = [_trajectory_from_dict(c) for c in data["candidates"]]
    return SearchResult(
        answer=data["answer"],
        prediction=candidates[data["prediction_index"]],
        candidates=candidates,
        usage=Usage(**{"prm_scored_tokens": data["usage"]["prm_tokens"], **data["usage"]}),
    )


def _index_of(prediction: Trajectory, candidates: list[Trajectory]) -> int:
    for i, candidate in enumerate(candidates):
        if candidate is prediction:
            return i
    raise ValueError("a SearchResult's prediction must be one of its candidates")


def _trajectory_to_dict(t: Trajectory) -> dict[str, Any]:
    d = dataclasses.asdict(t)
    d["step_scores"] = [None if math.isnan(s) else s for s in t.step_scores]
    return d


def _trajectory_from_dict(d: dict[str, Any]) -> Trajectory:
    scores = [math.nan if s is None else float(s) for s in d["step_scores"]]
    return Trajectory(
        steps=list(d["steps"]),
        step_scores=scores,
        finished=bool(d["finished"]),
        num_tokens=int(d["num_tokens"]),
        answer=d["answer"],
    )

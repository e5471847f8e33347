"""What math500_tts / aime24_tts compute from a response: the filter's JSON and the metrics."""

from __future__ import annotations

import json

import pytest

from tts_eval.lm_eval.response import SearchResponse
from tts_eval.lm_eval.task_metrics import SearchResultFilter, process_results
from tts_eval.serialization import result_to_dict
from tts_eval.types import SearchResult, Trajectory, Usage


def candidate(answer: str | None, scores: list[float]) -> Trajectory:
    steps = ["Work.\n\n", f"\\boxed{{{answer}}}" if answer else "No answer."]
    return Trajectory(steps=steps, step_scores=scores, finished=True, num_tokens=9, answer=answer)


def test_search_response_metrics_grade_every_candidate():
    candidates = [
        candidate("2", [0.2, 0.1]),
        candidate("9", [0.9, 0.95]),
        candidate("2", [0.3, 0.2]),
        candidate(None, [0.5, 0.5]),
    ]
    # The PRM picked the lone "9" although "2" has the majority.
    result = SearchResult("9", candidates[1], candidates, Usage(100, 36, 80, 1234.0, 0.7))
    response = SearchResponse("Work.\n\n\\boxed{9}", result_to_dict(result))
    (filtered,) = SearchResultFilter().apply([[response]], [{}])
    assert json.loads(filtered) == result_to_dict(result)

    metrics = process_results({"answer": "9"}, [filtered])
    assert metrics == {
        "acc": 1.0,
        "maj_acc": 0.0,
        "pass_at_n": 1.0,
        "candidate_acc": 0.25,
        "policy_tokens": 136.0,
        "prm_tokens": 80.0,
        "flops": 1234.0,
        "grading_failures": 0.0,
    }
    assert process_results({"answer": "2"}, [filtered])["maj_acc"] == 1.0


@pytest.mark.parametrize(("text", "gold", "acc"), [("Work.\n\nSo \\boxed{25}", "25", 1.0), ("No box here.", "25", 0.0)])
def test_another_models_plain_text_is_one_candidate_without_compute(text, gold, acc):
    (filtered,) = SearchResultFilter().apply([[text]], [{}])
    result = json.loads(filtered)
    assert result["usage"] is None and len(result["candidates"]) == 1
    assert "".join(result["candidates"][0]["steps"]) == text
    assert process_results({"answer": gold}, [filtered]) == {
        "acc": acc,
        "maj_acc": acc,
        "pass_at_n": acc,
        "candidate_acc": acc,
        "grading_failures": 0.0,
    }


def test_a_grading_failure_is_counted_and_judged_wrong(monkeypatch):
    """Every checker process killed as it starts (as by the OOM killer): the problem is
    graded, its undecidable answers count as wrong and as grading failures."""
    import os
    import signal

    from tts_eval.grading import checkers

    original = checkers._Checker.__init__

    def killed(self, *args, **kwargs):
        original(self, *args, **kwargs)
        os.kill(self.process.pid, signal.SIGKILL)

    checkers.shutdown()
    monkeypatch.setattr(checkers._Checker, "__init__", killed)
    try:
        # "0.5" and "1/2" need the checker; "\\frac{1}{2}" equals the gold's normal form.
        candidates = [candidate("0.50001", [0.9]), candidate("1/2", [0.8]), candidate("\\frac{1}{2}", [0.1])]
        result = SearchResult("0.50001", candidates[0], candidates, Usage(1, 1, 1, 1.0, 0.1))
        (filtered,) = SearchResultFilter().apply([[SearchResponse("", result_to_dict(result))]], [{}])
        metrics = process_results({"answer": "\\frac12"}, [filtered])
    finally:
        monkeypatch.undo()
        checkers.shutdown()
    assert metrics["grading_failures"] == 2.0
    assert metrics["acc"] == 0.0 and metrics["candidate_acc"] == pytest.approx(1 / 3) and metrics["pass_at_n"] == 1.0

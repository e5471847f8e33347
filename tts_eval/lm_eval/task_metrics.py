"""What tts-eval's lm-eval tasks compute per problem (the tasks' ``utils.py`` use these).

The task's filter (:class:`SearchResultFilter`) turns the model's response into the search
result as JSON text (lm-eval writes responses to the samples file as strings); lm-eval logs
it as the sample's ``filtered_resps`` and passes it to :func:`process_results`, which grades
it. Metrics, each a mean over problems:

- ``acc``: the voted answer is equivalent to the gold answer;
- ``maj_acc``: the majority answer among the candidates is;
- ``pass_at_n``: some candidate's answer is;
- ``candidate_acc``: the share of candidates whose answer is (an estimate of Pass@1);
- ``policy_tokens`` (input + output), ``prm_tokens``, ``flops``: the compute spent;
- ``grading_failures``: answers the grader reached no verdict on (a comparison that ran
  past its time limit, checker processes that died), each judged wrong and logged; summed
  over problems (:func:`total`), so a run states how many of its grades are in doubt.

A response from a model other than ``tts`` (a plain string) counts as a single candidate;
the compute metrics are then left out, as nothing says what the model spent.
"""

from __future__ import annotations

import json
from typing import Any

from lm_eval.api.filter import Filter

from tts_eval.grading import extract_answer, grade
from tts_eval.lm_eval.response import search_result_of
from tts_eval.steps import split_steps
from tts_eval.types import Trajectory
from tts_eval.voting import MAJORITY_VOTE, vote


class SearchResultFilter(Filter):
    """Each instance's first response, as its search result in JSON text."""

    def apply(self, resps, docs):
        return [json.dumps(search_result_dict(responses[0]), ensure_ascii=False) for responses in resps]


def search_result_dict(response: object) -> dict[str, Any]:
    """The search result a ``tts`` response carries; for another model's plain text, a
    one-candidate result without usage."""
    carried = search_result_of(response)
    if carried is not None:
        return carried
    text = str(response)
    answer = extract_answer(text)
    candidate = {"steps": split_steps(text), "step_scores": [], "finished": True, "num_tokens": None, "answer": answer}
    return {"answer": answer, "prediction_index": 0, "candidates": [candidate], "usage": None}


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """The metrics of one problem from its search result (JSON text, as the filter gives it)
    and the document's ``answer``."""
    (text,) = results
    result = json.loads(text)
    gold = str(doc["answer"])
    candidates = result["candidates"]
    verdicts: dict[str | None, bool] = {}
    failures = 0

    def correct(answer: str | None) -> bool:
        nonlocal failures
        if answer not in verdicts:
            verdict = grade(gold, answer) if answer is not None else None
            verdicts[answer] = verdict is not None and verdict.equal
            failures += verdict is not None and verdict.failure is not None
        return verdicts[answer]

    per_candidate = [correct(c["answer"]) for c in candidates]
    # Majority voting reads answers only.
    majority = vote([Trajectory(steps=c["steps"], answer=c["answer"]) for c in candidates], MAJORITY_VOTE, "last")
    metrics: dict[str, float] = {
        "acc": float(correct(result["answer"])),
        "maj_acc": float(per_candidate[majority]),
        "pass_at_n": float(any(per_candidate)),
        "candidate_acc": sum(per_candidate) / len(per_candidate),
        "grading_failures": float(failures),
    }
    usage = result.get("usage")
    if usage is not None:
        metrics["policy_tokens"] = float(usage["policy_input_tokens"] + usage["policy_output_tokens"])
        metrics["prm_tokens"] = float(usage["prm_tokens"])
        metrics["flops"] = float(usage["flops"])
    return metrics


def total(values: list[float]) -> float:
    """lm-eval aggregation: the sum over problems (for counts such as ``grading_failures``)."""
    return float(sum(values))

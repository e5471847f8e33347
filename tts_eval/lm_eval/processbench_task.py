"""The ProcessBench tasks (``tasks/processbench``): documents, prompt, per-sample results and
the benchmark's three aggregate metrics.

The ``prm`` model (:mod:`tts_eval.lm_eval.prm_model`) answers a document with the JSON of
:func:`prm_response`: its predicted first wrong step and every step's score, which the samples
file keeps. Any other lm-eval model reads the prompt (the problem and the numbered steps) and
answers in text; its prediction is the integer in its last ``\\boxed{}``.

Every sample's metric values are ``[label, prediction]`` pairs; the aggregations compute
ProcessBench's accuracy on erroneous samples (``error_acc``), on correct ones
(``correct_acc``) and their harmonic mean (``f1``), as fractions.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

from tts_eval.benchmarks import PROCESSBENCH_FIELDS as FIELDS
from tts_eval.processbench import NO_ERROR, processbench_score

PROMPT = """Below is a math problem and a solution to it, split into numbered steps.

Problem:
{problem}

Solution:
{steps}

Check the steps in order. Which step is the first to contain an error (a wrong calculation, \
a wrong claim or an unjustified conclusion)? Answer with its number, or -1 if every step is \
correct, and put the answer in \\boxed{{}}."""


def load_docs(split: str):
    """``datasets.DatasetDict`` with one split, ``test``: ProcessBench's ``split`` from the
    Hub, or ``$TTS_EVAL_DATA_DIR/processbench/<split>.jsonl`` when that is set."""
    from tts_eval.lm_eval.benchmarks import load_benchmark

    docs = load_benchmark(f"processbench_{split}")
    check_docs(docs["test"], source=_source(split))
    return docs


def _source(split: str) -> str:
    from tts_eval.lm_eval.benchmarks import DATA_DIR_VARIABLE, data_source

    data_dir = os.environ.get(DATA_DIR_VARIABLE)
    data = data_source(f"processbench_{split}")
    return os.path.join(data_dir, data.local_file) if data_dir else f"{data.hub_id} ({split} split)"


def check_docs(rows, source: str) -> None:
    """Each row must hold a problem, a non-empty list of text steps and a label in
    -1 .. len(steps) - 1; otherwise one error names the row and the field."""
    for number, row in enumerate(rows, 1):
        missing = [f for f in FIELDS if f not in row]
        if missing:
            raise ValueError(
                f"{source}: row {number} lacks field(s) {', '.join(missing)} (ProcessBench rows hold {', '.join(FIELDS)})"
            )
        steps, label = row["steps"], row["label"]
        if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
            raise ValueError(
                f"{source}: row {number} ('id' {row['id']!r}): 'steps' must be a non-empty list of strings"
            )
        if isinstance(label, bool) or not isinstance(label, int) or not NO_ERROR <= label < len(steps):
            raise ValueError(
                f"{source}: row {number} ('id' {row['id']!r}): 'label' is {label!r}; it must be the index of the first "
                f"wrong step (0 to {len(steps) - 1}) or -1"
            )


def doc_to_text(doc: dict[str, Any]) -> str:
    steps = "\n\n".join(f"Step {i}: {step.strip()}" for i, step in enumerate(doc["steps"]))
    return PROMPT.format(problem=doc["problem"].strip(), steps=steps)


def prm_response(prediction: int, step_scores: list[float], threshold: float) -> str:
    """The ``prm`` model's answer as JSON text (unreadable steps' NaN scores as null)."""
    scores = [None if math.isnan(s) else s for s in step_scores]
    return json.dumps({"prediction": prediction, "threshold": threshold, "step_scores": scores})


def prediction_of(response: str) -> int | None:
    """The predicted index in a response: the ``prm`` model's JSON, else the integer in the
    last ``\\boxed{}`` of a text answer; None when there is none."""
    try:
        data = json.loads(response)
    except (TypeError, json.JSONDecodeError):
        data = None
    if isinstance(data, dict) and isinstance(data.get("prediction"), int):
        return data["prediction"]
    from tts_eval.grading import extract_answer

    boxed = extract_answer(str(response))
    try:
        return int(boxed.strip()) if boxed is not None else None
    except ValueError:
        return None


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, list[int | None]]:
    pair = [int(doc["label"]), prediction_of(results[0])]
    return {"error_acc": pair, "correct_acc": pair, "f1": pair}


def _score(items: list[list[int | None]]):
    labels, predictions = zip(*items)
    return processbench_score(labels, predictions)


def error_acc(items: list[list[int | None]]) -> float:
    return _score(items).error_acc


def correct_acc(items: list[list[int | None]]) -> float:
    return _score(items).correct_acc


def f1(items: list[list[int | None]]) -> float:
    return _score(items).f1


def load_toy_docs():
    """The toy world's ProcessBench (``tts_eval.toy.PROCESSBENCH_FILE``) as a one-split
    ``datasets.DatasetDict``."""
    import datasets

    from tts_eval.jsonl import read_jsonl
    from tts_eval.toy import PROCESSBENCH_FILE

    rows = read_jsonl(PROCESSBENCH_FILE)
    check_docs(rows, source=str(PROCESSBENCH_FILE))
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})

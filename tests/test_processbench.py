"""ProcessBench: the metric on a hand-made set, the task's documents and answers, and the
``prm`` model through the stock ``lm_eval`` CLI on a tiny local PRM over a fixture in the
ProcessBench format."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tts_eval.benchmarks import PROCESSBENCH_SPLITS
from tts_eval.lm_eval import processbench_task as task
from tts_eval.processbench import NO_ERROR, first_error, processbench_score

# (label, step scores): with threshold 0.5 the predictions are 0, 1, 1, -1 on the erroneous
# samples (2 of 4 right) and -1, -1, 2 on the correct ones (2 of 3 right).
HAND_MADE = [
    (0, [0.1, 0.9]),
    (2, [0.9, 0.4, 0.2]),  # flagged too early
    (1, [0.8, 0.3, float("nan")]),  # the unreadable step is passed over
    (3, [0.9, 0.9, 0.6, 0.7]),  # missed
    (NO_ERROR, [0.9, 0.8]),
    (NO_ERROR, [float("nan"), 0.5]),  # 0.5 is not below the threshold
    (NO_ERROR, [0.9, 0.6, 0.49]),
]
ERROR_ACC, CORRECT_ACC = 2 / 4, 2 / 3
F1 = 2 * ERROR_ACC * CORRECT_ACC / (ERROR_ACC + CORRECT_ACC)  # 4/7


def test_metric_on_a_hand_made_set():
    predictions = [first_error(scores, 0.5) for _, scores in HAND_MADE]
    assert predictions == [0, 1, 1, NO_ERROR, NO_ERROR, NO_ERROR, 2]
    score = processbench_score([label for label, _ in HAND_MADE], predictions)
    assert (score.error_acc, score.correct_acc, score.erroneous, score.correct) == (ERROR_ACC, CORRECT_ACC, 4, 3)
    assert score.f1 == pytest.approx(4 / 7)

    # The task's path: the prm model's JSON answers, per-sample pairs, the three aggregations.
    items = []
    for label, scores in HAND_MADE:
        response = task.prm_response(first_error(scores, 0.5), scores, 0.5)
        assert json.loads(response)["step_scores"] == [None if math.isnan(s) else s for s in scores]
        items.append(task.process_results({"label": label}, [response])["f1"])
    assert (task.error_acc(items), task.correct_acc(items), task.f1(items)) == (
        ERROR_ACC,
        CORRECT_ACC,
        pytest.approx(F1),
    )

    # Text answers of other models: the last \boxed{} integer; none readable counts as wrong.
    assert task.prediction_of("Step 2 is wrong. \\boxed{2}") == 2
    assert task.prediction_of("all fine: \\boxed{-1}") == NO_ERROR
    assert task.prediction_of("I am not sure") is None
    assert processbench_score([1, NO_ERROR], [None, None]).f1 == 0.0
    with pytest.raises(ValueError, match="no correct \\(label -1\\) solution"):
        processbench_score([0, 2], [0, 2])


def test_bad_documents_and_model_args_are_reported_before_loading(tmp_path, monkeypatch):
    from tts_eval.lm_eval.prm_model import PRMModelArgsError, parse_prm_model_args

    with pytest.raises(ValueError, match=r"row 2 \('id' 'b'\): 'label' is 3"):
        task.check_docs(
            [
                {"id": "a", "problem": "p", "steps": ["x"], "label": 0},
                {"id": "b", "problem": "p", "steps": ["x", "y"], "label": 3},
            ],
            source="f.jsonl",
        )
    with pytest.raises(ValueError, match="row 1 lacks field\\(s\\) steps"):
        task.check_docs([{"id": "a", "problem": "p", "label": 0}], source="f.jsonl")
    with pytest.raises(PRMModelArgsError, match="'prm' is missing"):
        parse_prm_model_args({"threshold": "0.5"})
    with pytest.raises(PRMModelArgsError, match="'threshold'"):
        parse_prm_model_args({"prm": "toy-prm", "threshold": "1.5"})
    with pytest.raises(PRMModelArgsError, match="unknown field 'temprature'"):
        parse_prm_model_args({"prm": "toy-prm", "temprature": "0.5"})
    assert parse_prm_model_args({"prm": "toy-prm", "threshold": "0.3", "batch_size": "4"}).spec_overrides == {
        "batch_size": "4"
    }

    monkeypatch.setenv("TTS_EVAL_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"processbench/math.jsonl"):
        task.load_docs("math")


def fixture_rows(split: str) -> list[dict]:
    """Rows in ProcessBench's format: erroneous and correct solutions of various lengths."""
    rows = []
    for i in range(6):
        steps = [
            f"Step text {j} of {split} solution {i}: {i * 7 + j} + {j} = {i * 7 + 2 * j}." for j in range(2 + i % 3)
        ]
        label = NO_ERROR if i % 2 else i % len(steps)
        rows.append(
            {
                "id": f"{split}-{i}",
                "generator": "fixture",
                "problem": f"What is {i} + {i} in {split}?",
                "steps": steps,
                "final_answer_correct": label == NO_ERROR,
                "label": label,
            }
        )
    return rows


@pytest.mark.slow
def test_stock_lm_eval_cli_runs_the_prm_model_on_processbench(tmp_path):
    from prm_fixtures import PAPER_NAMES, load_tiny_prm, tiny_prm_dir

    data = tmp_path / "data"  # only processbench/: the tasks read nothing else
    for split in PROCESSBENCH_SPLITS:
        path = data / "processbench" / f"{split}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in fixture_rows(split)))
    prm_name, threshold = PAPER_NAMES["token_classifier"], 0.45
    model_args = (
        f"prm={prm_name},model={tiny_prm_dir('token_classifier')},device=cpu,dtype=float32,threshold={threshold}"
    )
    env = dict(
        os.environ, TTS_EVAL_DATA_DIR=str(data), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1"
    )
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "lm_eval"),
            "--model",
            "prm",
            "--model_args",
            model_args,
            "--tasks",
            "processbench",
            "--output_path",
            str(out),
            "--log_samples",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (folder,) = out.iterdir()
    assert folder.name == prm_name  # named after the PRM
    (results_file,) = folder.glob("results_*.json")
    results = json.loads(results_file.read_text())
    assert results["config"]["prm_judge"]["threshold"] == threshold
    assert results["config"]["prm_judge"]["processbench_f1_published"] == 73.5

    reference = load_tiny_prm("token_classifier")  # scored independently, in process
    for split in PROCESSBENCH_SPLITS:
        name = f"processbench_{split}"
        (samples_file,) = folder.glob(f"samples_{name}_*.jsonl")
        samples = sorted(
            (json.loads(line) for line in samples_file.read_text().splitlines()), key=lambda s: s["doc_id"]
        )
        rows = fixture_rows(split)
        assert [s["doc"]["id"] for s in samples] == [r["id"] for r in rows]
        expected = reference.score_batch([(r["problem"], r["steps"]) for r in rows])
        predictions = []
        for sample, row, scores in zip(samples, rows, expected):
            answer = json.loads(sample["filtered_resps"][0])
            assert answer["step_scores"] == pytest.approx(scores, abs=1e-5)
            predictions.append(next((i for i, s in enumerate(scores) if s < threshold), NO_ERROR))
            assert answer["prediction"] == predictions[-1] and sample["f1"] == [row["label"], predictions[-1]]
        score = processbench_score([r["label"] for r in rows], predictions)
        got = results["results"][name]
        assert got["error_acc,none"] == pytest.approx(score.error_acc)
        assert got["correct_acc,none"] == pytest.approx(score.correct_acc)
        assert got["f1,none"] == pytest.approx(score.f1)
    assert sorted(results["results"]) == sorted(
        f"processbench_{s}" for s in PROCESSBENCH_SPLITS
    )  # the tag's four tasks

"""What the ``tts`` model's runs write: no secret anywhere, output files that appear all at
once, and a resume checkpoint keyed by what decides results only."""

from __future__ import annotations

import json

import pytest

from tts_eval.lm_eval import registration
from tts_eval.lm_eval.checkpoint import CheckpointStore, fingerprint
from tts_eval.lm_eval.settings import parse_model_args
from tts_eval.types import SearchResult, Trajectory, Usage

KEY = "sk-planted-7f3a9c1e5b"
TASKS = ("math500_tts", "aime24_tts")


def served_args(**changes) -> dict:
    args = {
        "policy": "served-policy",
        "backend": "openai",
        "base_urls": "http://127.0.0.1:9/v1",
        "api_key": KEY,
        "timeout": 30.0,
        "max_retries": 2,
        "strategy": "majority",
        "n": 4,
    }
    return {**args, **changes}


@pytest.fixture
def tracker(tmp_path):
    import lm_eval.loggers.evaluation_tracker as module

    registration.on_evaluation_tracker_imported(module)  # as the .pth hook does
    made = module.EvaluationTracker(output_path=str(tmp_path / "runs"))
    made.general_config_tracker.model_name_sanitized = "served-policy"
    return made


def results_and_samples(args) -> tuple[dict, dict]:
    settings = args.resolved()
    results = {
        "results": {t: {"acc,none": 0.5} for t in TASKS},
        "configs": {t: {"task": t, "metadata": {**served_args(), "version": 1.0}} for t in TASKS},
        "config": {"model": "tts", "model_args": served_args(), "tts": settings},
    }
    sample = {
        "doc_id": 0,
        "doc": {"problem": "1+1", "answer": "2"},
        "target": "2",
        "arguments": [["1+1", {"until": []}]],
        "resps": [["\\boxed{2}"]],
        "filtered_resps": ["{}"],
        "doc_hash": "a",
        "prompt_hash": "b",
        "target_hash": "c",
    }
    return results, {t: [dict(sample)] for t in TASKS}


def test_no_secret_in_results_samples_or_checkpoint(tracker, tmp_path):
    args = parse_model_args(served_args())
    results, samples = results_and_samples(args)
    tracker.save_results_aggregated(results=results, samples=samples)
    for task in TASKS:
        tracker.save_results_samples(task, samples[task])
    store = CheckpointStore(tmp_path / "runs" / "tts_checkpoints", args.result_settings())
    candidate = Trajectory(steps=["\\boxed{2}"], answer="2")
    store.add_all([("k", SearchResult("2", candidate, [candidate], Usage(1, 1, 0, 1.0, 0.1)), {"task": "math500_tts"})])

    written = [p for p in (tmp_path / "runs").rglob("*") if p.is_file()]
    names = {p.name.split("_20")[0] for p in written}
    assert names == {"results", "samples_aime24_tts", "samples_math500_tts", f"{store.fingerprint}.jsonl"}
    for path in written:
        assert KEY not in path.read_text(encoding="utf-8"), path
    saved = json.loads(next(p for p in written if p.name.startswith("results_")).read_text())
    assert saved["config"]["tts"]["api_key"] == "<redacted>"  # present, not its value
    assert saved["config"]["model_args"]["api_key"] == "<redacted>"
    assert saved["configs"]["math500_tts"]["metadata"]["api_key"] == "<redacted>"


def test_fingerprint_ignores_connection_settings():
    base = parse_model_args(served_args()).result_settings()
    moved = parse_model_args(
        served_args(base_urls="http://10.0.0.2:8000/v1", api_key="other", timeout=600.0, max_retries=9)
    ).result_settings()
    assert fingerprint(moved) == fingerprint(base)
    assert "api_key" not in base and "base_urls" not in base
    assert fingerprint(parse_model_args(served_args(n=8)).result_settings()) != fingerprint(base)


def test_a_kill_while_writing_leaves_no_output_and_the_rerun_writes_one_run(tracker, tmp_path, monkeypatch):
    import lm_eval.loggers.evaluation_tracker as module

    args = parse_model_args(served_args())
    results, samples = results_and_samples(args)
    calls = []
    sanitize = module.sanitize_list

    def dies_in_the_second_samples_file(rows):
        calls.append(rows)
        if len(calls) == 3:  # two per sample: the first task's file is written, the second's begun
            raise KeyboardInterrupt
        return sanitize(rows)

    monkeypatch.setattr(module, "sanitize_list", dies_in_the_second_samples_file)
    tracker.save_results_aggregated(results=results, samples=samples)
    with pytest.raises(KeyboardInterrupt):
        for task in TASKS:
            tracker.save_results_samples(task, samples[task])
    monkeypatch.undo()
    runs = tmp_path / "runs"
    assert not list(runs.glob("*/results_*.json")) and not list(runs.glob("*/samples_*.jsonl"))

    rerun = type(tracker)(output_path=str(runs))
    rerun.general_config_tracker.model_name_sanitized = "served-policy"
    results, samples = results_and_samples(args)
    rerun.save_results_aggregated(results=results, samples=samples)
    for task in TASKS:
        rerun.save_results_samples(task, samples[task])
    (result_file,) = runs.glob("served-policy/results_*.json")
    date = result_file.stem.removeprefix("results_")
    assert sorted(p.name for p in runs.glob("served-policy/samples_*")) == [
        f"samples_{t}_{date}.jsonl" for t in sorted(TASKS)
    ]
    assert not list(runs.glob(".tts_eval_partial_*"))


@pytest.mark.slow
def test_lm_eval_echoes_no_secret_to_the_terminal(tmp_path):
    """lm-eval logs the model_args it creates a model with, and prints them again after the
    run from the dict it passed in: a real ``lm_eval`` run with a planted key (its server is
    down, so the run stops at the model) shows the line, and neither shows the key."""
    import subprocess
    import sys
    from pathlib import Path

    from tts_eval.lm_eval.model import TTSLM
    from tts_eval.serving.http import ServerUnavailableError

    tokenizer = Path(__file__).resolve().parent.parent / "tts_eval" / "toy" / "models" / "policy-small"
    args = served_args(max_retries=0, tokenizer=str(tokenizer))
    model_args = ",".join(f"{k}={v}" for k, v in args.items())
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "lm_eval"), "--model", "tts", "--model_args", model_args,
         "--tasks", "math500_tts", "--limit", "1", "--output_path", str(tmp_path / "runs")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    terminal = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Traceback" not in terminal, terminal[-2000:]
    assert terminal.rstrip().splitlines()[-1].startswith("Error: /v1/models failed on every attempt"), terminal[-2000:]
    assert "Initializing tts model" in terminal and "'api_key': '<redacted>'" in terminal, terminal[-2000:]
    assert KEY not in terminal

    given = dict(args)
    with pytest.raises(ServerUnavailableError, match=r"127\.0\.0\.1:9"):
        TTSLM.create_from_arg_obj(given)
    assert given["api_key"] == "<redacted>" and given["policy"] == "served-policy"  # the summary line's dict

"""``strategy=compute_optimal`` through the stock ``lm_eval`` CLI in the toy world: the shipped
small policy and toy PRM on arith_tts, with a table whose buckets make different choices.

The table's bucket edges are placed from the probes themselves (the first two solutions a
Best-of-N search with the same seed draws, which is what the strategy's probe draws), so that
the chosen documents fall in all three buckets whatever the PRM's quality. The CLI's logged
search results must equal the same search run in-process, and each problem must have run
its bucket's choice within the budget, with the probe paid for.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tts_eval import search
from tts_eval.compute_optimal import DifficultyModel, load_table, probe_features
from tts_eval.serialization import result_to_dict
from tts_eval.toy import load_test_problems, model_dir

pytestmark = pytest.mark.slow

N, PROBE = 4, 2
POOL = range(16)  # documents the test picks two per bucket from
LIMITS = {"max_tokens": 96, "max_step_tokens": 24, "seed": 0}
DIFFICULTY = {"bias": 0.0, "agreement": 0.5, "prm": 0.5, "aggregation": "min"}
CHOICES = {
    "easy": {"strategy": "majority"},
    "medium": {"strategy": "best_of_n", "aggregation": "last", "voting": "prm_max"},
    "hard": {"strategy": "beam_search", "beam_size": 2, "aggregation": "min", "voting": "prm_vote"},
}
# bucket -> (candidates, which of them the PRM scored): majority scores only the probe's 2 of
# its 4; beam search gets the 4 - 2 candidates per step the probe leaves: one beam, one result.
EXPECTED_SHAPE = {"easy": (N, [True] * PROBE + [False] * (N - PROBE)), "medium": (N, [True] * N), "hard": (1, [True])}


def routing_edges(values: list[float]) -> tuple[float, float]:
    """(medium_from, easy_from) splitting ``values`` into three groups of at least two, at the
    widest gaps (so that float noise between processes cannot move a value across an edge)."""
    v = sorted(values)
    splits = [
        (min(v[i] - v[i - 1], v[j] - v[j - 1]), i, j) for i in range(2, len(v) - 3) for j in range(i + 2, len(v) - 1)
    ]
    gap, i, j = max(splits)
    assert gap > 1e-4, f"the probes' estimates do not spread into three groups: {v}"
    return (v[i - 1] + v[i]) / 2, (v[j - 1] + v[j]) / 2


def test_stock_lm_eval_runs_compute_optimal_on_the_toy_world(tmp_path):
    from tts_eval.toy.evaluate import as_problems, load_toy_policy, load_toy_prm

    policy, prm = load_toy_policy("small"), load_toy_prm()
    pool = [load_test_problems()[i] for i in POOL]
    probes = search(as_problems(policy, pool), policy, prm, strategy="best_of_n", n=PROBE, **LIMITS)
    features = [probe_features(p.candidates, DIFFICULTY["aggregation"]) for p in probes]
    medium_from, easy_from = routing_edges([DifficultyModel(**DIFFICULTY).predict(f) for f in features])
    estimate = DifficultyModel(**DIFFICULTY, medium_from=medium_from, easy_from=easy_from)
    table = {
        "name": "routing",
        "probe": {"n": PROBE},
        "difficulty": estimate.model_dump(),
        "rules": [{"plans": [{"budget": N, **CHOICES}]}],
    }
    table_file = tmp_path / "routing.yaml"
    table_file.write_text(yaml.safe_dump(table))
    buckets_of_pool = [estimate.bucket(f) for f in features]
    # In file order: lm-eval names the k-th selected document after the k-th id given.
    docs = sorted(d for bucket in CHOICES for d in [d for d, b in zip(POOL, buckets_of_pool) if b == bucket][:2])
    buckets = [buckets_of_pool[POOL.index(d)] for d in docs]
    assert sorted(buckets) == sorted(["easy", "medium", "hard"] * 2)

    model_args = (
        f"policy={model_dir('policy-small')},prm=toy-prm,strategy=compute_optimal,"
        f"n={N},table={table_file},max_tokens={LIMITS['max_tokens']},max_step_tokens={LIMITS['max_step_tokens']},"
        "seed=0,device=cpu"
    )
    # The lm_eval entry point of this interpreter's environment, as a user runs it.
    command = [
        str(Path(sys.executable).parent / "lm_eval"),
        "--model",
        "tts",
        "--model_args",
        model_args,
        "--tasks",
        "arith_tts",
        "--samples",
        json.dumps({"arith_tts": docs}),
        "--output_path",
        str(tmp_path / "out"),
        "--log_samples",
    ]
    env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    cli = subprocess.Popen(
        command, env={**os.environ, **env}, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )

    # Meanwhile, the same search in-process.
    chosen = [load_test_problems()[d] for d in docs]
    expected = search(
        as_problems(policy, chosen),
        policy,
        prm,
        strategy="compute_optimal",
        n=N,
        table=load_table(table_file),
        **LIMITS,
    )

    output, _ = cli.communicate(timeout=600)
    assert cli.returncode == 0, output[-3000:]
    (folder,) = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    (samples_file,) = folder.glob("samples_arith_tts_*.jsonl")
    samples = {s["doc_id"]: s for s in map(json.loads, samples_file.read_text().splitlines())}
    assert sorted(samples) == sorted(docs)

    for doc, want, bucket in zip(docs, expected, buckets):
        got = json.loads(samples[doc]["filtered_resps"][0])
        wanted = result_to_dict(want)
        got["usage"].pop("seconds"), wanted["usage"].pop("seconds")
        assert got == wanted, (doc, bucket)
        count, scored = EXPECTED_SHAPE[bucket]
        assert len(got["candidates"]) == count, (doc, bucket)
        assert [bool(c["step_scores"]) for c in got["candidates"]] == scored, (doc, bucket)
        probe = probes[POOL.index(doc)]
        generated = sum(c["num_tokens"] for c in got["candidates"])
        if bucket == "hard":  # the probe, then the beam search's result and its pruned beams
            assert got["usage"]["policy_output_tokens"] >= generated + sum(c.num_tokens for c in probe.candidates)
        else:  # the probe's solutions are the first candidates; every sampled one is a candidate
            assert [c["steps"] for c in got["candidates"][:PROBE]] == [c.steps for c in probe.candidates]
            assert got["usage"]["policy_output_tokens"] == generated
        assert got["usage"]["prm_tokens"] > 0  # the probe was scored, and paid for

    results = json.loads(next(folder.glob("results_*.json")).read_text())
    assert results["results"]["arith_tts"]["acc,none"] == pytest.approx(
        sum(s["acc"] for s in samples.values()) / len(docs)
    )
    assert results["config"]["tts"]["strategy"] == "compute_optimal"
    assert results["config"]["tts"]["table"] == str(table_file)

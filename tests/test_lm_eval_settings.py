"""The tts model's model_args (every bad input is one clear error before any model loads)
and its resume checkpoint store."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from prm_backends.registry import find_spec_file
from tts_eval.lm_eval.checkpoint import CheckpointStore
from tts_eval.lm_eval.settings import ModelArgsError, parse_model_args
from tts_eval.serialization import result_to_dict
from tts_eval.types import SearchResult, Trajectory, Usage

# A policy that cannot load: an error about the arguments proves they were checked first.
MISSING_POLICY = "/nonexistent/policy-checkpoint"
PRM = "qwen2.5-math-prm-7b"


@pytest.mark.parametrize(
    ("model_args", "message"),
    [
        ({"strategy": "beam"}, "unknown strategy 'beam'; choose one of cot, majority, best_of_n, beam_search, dvts"),
        ({"strategy": "best_of_n", "n": 4, "prm": "no-such-prm"}, "unknown PRM 'no-such-prm'"),
        (
            {"strategy": "beam_search", "n": 6, "beam_size": 4, "prm": PRM},
            "strategy=beam_search needs n to be a multiple of beam_size (got n=6, beam_size=4)",
        ),
        (
            {"strategy": "dvts", "n": 5, "beam_size": 2, "prm": PRM},
            "needs n to be a multiple of beam_size (got n=5, beam_size=2)",
        ),
        ({"strategy": "cot", "prm": PRM}, "strategy=cot does not use a PRM"),
        ({"strategy": "majority", "n": 4, "prm": PRM}, "strategy=majority does not use a PRM"),
        ({"strategy": "best_of_n", "n": 4}, "strategy=best_of_n needs a PRM: pass prm=<name or YAML path>"),
        ({"strategy": "majority", "n": 4, "voting": "prm_max"}, "voting=prm_max ranks candidates by PRM scores"),
        ({"strategy": "majority", "n": "four"}, "'n': Input should be a valid integer"),
        ({"strategy": "cot", "tempreature": 0.5}, "unknown key(s) 'tempreature'"),
        ({"strategy": "cot", "prm_model": "/some/dir"}, "'prm_model' set but no 'prm' is given"),
        ({"strategy": "best_of_n", "n": 2, "prm": PRM, "prm_max_lenght": 9}, "unknown field 'max_lenght'"),
        (
            {"strategy": "cot", "backend": "tgi"},
            "'backend': unknown policy backend 'tgi'; choose one of: hf, openai, vllm",
        ),
        (
            {"strategy": "dvts", "n": 4, "prm": PRM, "resampling": "multinomial"},
            "resampling only apply to strategy=particle_filtering",
        ),
        (
            {"strategy": "particle_filtering", "n": 4, "prm": PRM, "pf_temperature": -1},
            "pf_temperature must be a positive number",
        ),
    ],
)
def test_bad_model_args_fail_before_any_model_loads(model_args, message):
    from tts_eval.lm_eval.model import TTSLM

    with pytest.raises(ModelArgsError) as caught:
        TTSLM(policy=MISSING_POLICY, **model_args)
    assert message in str(caught.value)


def test_missing_policy_is_named():
    from tts_eval.lm_eval.model import TTSLM

    with pytest.raises(
        ModelArgsError, match=r"model_args: 'policy' is missing; give the policy model, e.g. --model_args policy="
    ):
        TTSLM(strategy="cot")


def test_prm_yaml_path_and_overrides_are_checked(tmp_path):
    spec = tmp_path / "my-prm.yaml"
    spec.write_text(
        f"name: Mine\nfamily: token_classifier\nmodel: {tmp_path}\nstep_tag: '<extra_0>'\nsystem_prompt: hi\n"
    )
    args = parse_model_args({"policy": "owner/policy", "strategy": "best_of_n", "n": 2, "prm": str(spec)})
    assert args.prm == str(spec)
    with pytest.raises(
        ModelArgsError, match=r"'dtype': Input should be 'auto', 'float32', 'bfloat16' or 'float16' \(got 'float8'\)"
    ):
        parse_model_args(
            {"policy": MISSING_POLICY, "strategy": "best_of_n", "n": 2, "prm": str(spec), "dtype": "float8"}
        )
    # prm_<field> reaches the spec, the other keys the policy backend.
    args = parse_model_args(
        {
            "policy": "p",
            "strategy": "best_of_n",
            "n": 2,
            "prm": str(spec),
            "prm_max_length": 512,
            "prm_device": "cpu",
            "revision": "main",
        }
    )
    assert args.prm_overrides == {"max_length": 512, "device": "cpu"}
    assert args.policy_options == {"revision": "main"}
    # A served policy has no device or dtype: the shared ones go to the PRM alone.
    args = parse_model_args(
        {
            "policy": "served",
            "backend": "openai",
            "base_urls": "http://localhost:8000/v1",
            "strategy": "best_of_n",
            "n": 2,
            "prm": str(spec),
            "device": "cpu",
            "dtype": "float32",
        }
    )
    assert args.prm_overrides == {"device": "cpu", "dtype": "float32"}
    assert args.policy_options == {"base_urls": "http://localhost:8000/v1"}


def test_resolved_settings_fill_the_strategy_defaults(tmp_path):
    cot = parse_model_args({"policy": "p", "strategy": "cot"}).resolved()
    beam = parse_model_args({"policy": "p", "strategy": "beam_search", "n": 8, "prm": PRM}).resolved()
    assert (cot["temperature"], cot["max_tokens"], cot["n"], cot["voting"]) == (0.0, 8192, 1, "majority")
    assert (beam["temperature"], beam["max_tokens"], beam["beam_size"]) == (0.7, 8192, 4)
    # A strategy that uses a PRM votes with it, aggregated by min when the spec recommends nothing ...
    assert (beam["voting"], beam["aggregation"]) == ("prm_vote", "min")
    # ... or as its spec recommends; the given settings always win; what is used is recorded.
    spec = tmp_path / "last-prm.yaml"
    spec.write_text(f"{Path(find_spec_file(PRM)).read_text()}\naggregation: last\n")
    bon = {"policy": "p", "strategy": "best_of_n", "n": 4, "prm": str(spec)}
    assert parse_model_args(bon).search_kwargs()["aggregation"] == "last"
    assert parse_model_args(bon).resolved()["voting"] == "prm_vote"
    chosen = parse_model_args({**bon, "voting": "majority", "aggregation": "prod"})
    assert (chosen.resolved()["voting"], chosen.search_kwargs()["aggregation"]) == ("majority", "prod")
    majority = parse_model_args({"policy": "p", "strategy": "majority", "n": 4}).search_kwargs()
    assert majority["voting"] == "majority"


def test_only_result_settings_name_the_checkpoint():
    base = {"policy": "p", "strategy": "best_of_n", "n": 4, "prm": PRM}
    fingerprint = parse_model_args(base).result_settings()
    faster = {**base, "batch_size": 32, "prm_batch_size": 16, "chunk_size": 8, "device": "cpu", "checkpoint": "/ckpt"}
    assert parse_model_args(faster).result_settings() == fingerprint
    for change in ({"seed": 1}, {"n": 8}, {"temperature": 0.7000001}, {"max_tokens": 100}, {"prm_model": "other/prm"}):
        assert parse_model_args({**base, **change}).result_settings() != fingerprint, change


def result(answer: str, scores: list[float]) -> SearchResult:
    candidate = Trajectory(
        steps=["a\n\n", f"\\boxed{{{answer}}}"], step_scores=scores, finished=True, num_tokens=7, answer=answer
    )
    return SearchResult(answer, candidate, [candidate], Usage(10, 7, 12, 123.0, 0.5))


def test_checkpoint_survives_a_torn_write_and_reopens(tmp_path):
    settings = {"policy": "p", "n": 4}
    store = CheckpointStore(tmp_path, settings)
    store.add_all(
        [
            ("k1", result("1", [0.5, math.nan]), {"task": "t", "doc_id": 0}),
            ("k2", result("2", [0.25, 0.75]), {"task": "t", "doc_id": 1}),
        ]
    )
    with open(store.path, "ab") as f:  # a kill in the middle of the next append
        f.write(b'{"key": "k3", "result": {"answ')

    reopened = CheckpointStore(tmp_path, settings)
    assert len(reopened) == 2 and "k3" not in reopened
    assert result_to_dict(reopened.get("k1")) == result_to_dict(result("1", [0.5, math.nan]))  # NaN kept
    assert math.isnan(reopened.get("k1").prediction.step_scores[1])
    assert reopened.get("k2") == result("2", [0.25, 0.75])
    reopened.add_all([("k3", result("3", [0.1, 0.2]), {"task": "t", "doc_id": 2})])

    lines = store.path.read_text().splitlines()
    assert [json.loads(line).get("key") for line in lines] == [None, "k1", "k2", "k3"]  # header, then problems
    assert CheckpointStore(tmp_path, settings).get("k3").answer == "3"


def test_other_settings_never_share_a_checkpoint(tmp_path):
    first = CheckpointStore(tmp_path, {"policy": "p", "seed": 0})
    first.add_all([("k", result("1", [0.5, 0.5]), {})])
    other = CheckpointStore(tmp_path, {"policy": "p", "seed": 1})
    assert other.path != first.path and "k" not in other
    assert CheckpointStore(tmp_path, {"seed": 0, "policy": "p"}).path == first.path  # order does not matter


def test_backend_auto_is_vllm_only_on_cuda_with_vllm_installed(monkeypatch):
    import importlib.util

    import torch

    args = {"policy": "pkg://tts_eval.toy/models/policy-small"}
    assert parse_model_args(args).backend == "hf"  # the default, on this CPU machine
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    has_vllm = importlib.util.find_spec("vllm") is not None
    assert parse_model_args({**args, "backend": "auto"}).resolved()["backend"] == ("vllm" if has_vllm else "hf")
    real_find_spec = importlib.util.find_spec
    # vLLM missing, every other package still found (pkg:// paths resolve through find_spec too)
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else real_find_spec(name, *a)
    )
    assert parse_model_args(args).backend == "hf"  # CUDA without vLLM

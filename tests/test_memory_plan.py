"""Device memory planning: shares computed from configs, explicit settings kept, and a plan
that cannot fit refused before any weights load."""

from __future__ import annotations

import pytest

from tts_eval.memory_plan import DEVICE_SHARE, GIB, MemoryPlanError, ModelNeed, plan_device

TOY_POLICY = "pkg://tts_eval.toy/models/policy-small"


def seven_b_prm() -> ModelNeed:
    # Qwen2.5-Math-PRM-7B in bf16: 6.54B parameters; activations for 8 x 4096 tokens.
    return ModelNeed("prm", "hf", "prm-7b", "cuda:0", weights=int(6.54e9 * 2), activations=6 * GIB)


def vllm_policy(**user) -> ModelNeed:
    per_token = 28 * 2 * 2 * 128 * 2  # a 1.5B Qwen2: 28 layers, 2 KV heads of 128, bf16
    return ModelNeed(
        "policy",
        "vllm",
        "policy-1.5b",
        "cuda:0",
        weights=int(1.54e9 * 2),
        activations=2 * GIB,
        kv_per_token=per_token,
        kv_min=4096 * per_token,
        kv_max=1024 * 4096 * per_token,
        user_settings=user,
    )


def test_vllm_policy_leaves_the_prm_its_room_on_a_gpu():
    total, free = 80 * GIB, 79 * GIB
    policy, prm = vllm_policy(), seven_b_prm()
    plan = plan_device("cuda:0", [policy, prm], total=total, free=free)
    share = plan.options("policy")["gpu_memory_utilization"]
    # What the policy engine reserves, plus the PRM's needs, fits in what vLLM would take
    # alone (90% of the device less what is already used), with the PRM's room intact.
    assert share * total + prm.weights + prm.activations <= DEVICE_SHARE * total - (total - free)
    assert 0.5 < share < 0.75  # most of the device still goes to the policy's KV cache
    assert plan.options("prm") == {}  # an hf PRM needs no setting, only room
    recorded = plan.as_dict()
    assert [m["role"] for m in recorded["models"]] == ["policy", "prm"]
    assert recorded["models"][0]["planned_settings"] == {"gpu_memory_utilization": share}


def test_explicit_settings_win_and_are_only_checked():
    total = 141 * GIB
    # 0.6 of the device leaves room for the PRM: kept as given, nothing planned over it.
    plan = plan_device("cuda:0", [vllm_policy(gpu_memory_utilization=0.6), seven_b_prm()], total=total, free=total)
    assert plan.options("policy") == {}
    # vLLM's old default, 0.9, does not: one error with every size and the options.
    with pytest.raises(MemoryPlanError) as err:
        plan_device("cuda:0", [vllm_policy(gpu_memory_utilization=0.9), seven_b_prm()], total=total, free=total)
    message = str(err.value)
    assert "141.0 GiB in all" in message
    assert "prm prm-7b (hf): weights 12.182 GiB, activations 6.0 GiB" in message
    assert "gpu_memory_utilization" in message and "prm_batch_size" in message


def test_cpu_build_gets_explicit_kv_cache_bytes():
    def toy_engines() -> list[ModelNeed]:
        per_token = 1024
        return [
            ModelNeed(
                "policy",
                "vllm",
                "toy",
                "cpu",
                weights=GIB // 100,
                activations=GIB // 10,
                kv_per_token=per_token,
                kv_min=16384 * per_token,
                kv_max=256 * 16384 * per_token,
            ),
            ModelNeed(
                "prm",
                "vllm",
                "toy-prm",
                "cpu",
                weights=GIB // 100,
                activations=GIB // 10,
                kv_cache=24 * 2**20,
                kv_min=4096 * 5 * 1024,
            ),
        ]

    plan = plan_device("cpu", toy_engines(), total=24 * GIB, free=18 * GIB)
    assert plan.options("policy") == {"kv_cache_memory_bytes": GIB}  # capped: the machine is shared
    assert plan.options("prm") == {"kv_cache_memory_bytes": 24 * 2**20}
    # 0.15 GiB free: not even one sequence of the policy's max_model_len fits.
    with pytest.raises(MemoryPlanError, match=r"at least 0.016 GiB: one sequence of max_model_len"):
        plan_device("cpu", toy_engines(), total=24 * GIB, free=int(0.15 * GIB))


def test_a_plan_that_cannot_fit_fails_before_any_weights_load(monkeypatch):
    """The tts model plans from the configs alone: with a PRM batch of 100k inputs of 4096
    tokens its activations cannot fit, and the run stops before either model loads."""
    import prm_backends
    import tts_eval.policies
    from tts_eval.lm_eval.model import TTSLM

    def no_loading(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(tts_eval.policies, "load_policy", no_loading)
    monkeypatch.setattr(prm_backends, "load_prm", no_loading)
    with pytest.raises(MemoryPlanError) as err:
        TTSLM(policy=TOY_POLICY, prm="toy-prm", strategy="best_of_n", n=4, device="cpu", prm_batch_size=100_000)
    message = str(err.value)
    assert message.startswith("policy and PRM do not fit on cpu: ")
    # The PRM's sizes, computed from its config: 5 layers of hidden 128 / MLP 384, float32.
    activations = 1.2 * 100_000 * 4096 * (4 * 128 + 3 * 384) * 4 / GIB
    assert f"activations {round(activations, 3)} GiB" in message
    assert "prm " in message and "policy " in message and "Options:" in message


def test_the_vllm_engine_options_are_declared_once_and_taken_by_both_constructors():
    import inspect

    from pydantic import ValidationError

    from prm_backends import load_spec
    from prm_backends.runtime_vllm import VLLMProcessRewardModel
    from tts_eval.policies.vllm import VLLMPolicy
    from tts_eval.serving.vllm import EngineOptions

    spec = load_spec("qwen2.5-math-prm-7b", model="/no/such/model", runtime="vllm")
    for cls, first in ((VLLMPolicy, "/no/such/model"), (VLLMProcessRewardModel, spec)):
        params = inspect.signature(cls).parameters
        assert "engine" not in params
        for name, info in EngineOptions.model_fields.items():
            assert (params[name].kind, params[name].default) == (inspect.Parameter.KEYWORD_ONLY, info.default)
        # Checked with the constructor's other options, before anything loads.
        with pytest.raises(ValidationError) as err:
            cls(first, block_size=0, engine_args=3)
        assert err.value.title == f"{cls.__name__}.__init__"
        assert [e["loc"] for e in err.value.errors()] == [("block_size",), ("engine_args",)]

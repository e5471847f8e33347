"""Every strategy end to end on a real tiny transformers policy and a real tiny PRM, on
MATH-500 problems: candidate counts, step boundaries, token counts, usage, determinism."""

from __future__ import annotations

import pytest
from prm_fixtures import load_tiny_prm
from tiny_models import build_causal_lm, char_tokenizer, corpus_from_data
from transformers import AutoTokenizer

from tts_eval import Problem, load_policy, search
from tts_eval.serialization import result_to_dict
from tts_eval.steps import STEP_SEPARATOR

pytestmark = pytest.mark.slow

N, M = 4, 2
LIMITS = {"max_tokens": 96, "max_step_tokens": 40}
EXPECTED_CANDIDATES = {"cot": 1, "majority": N, "best_of_n": N, "beam_search": N // M, "dvts": N // M}


@pytest.fixture(scope="module")
def stepping_policy_dir(tmp_path_factory, data_dir):
    """A random Llama whose raised newline logit makes it write several steps per solution."""
    tokenizer = char_tokenizer(corpus_from_data(data_dir))
    return build_causal_lm(
        tmp_path_factory.mktemp("stepping-policy"), tokenizer, arch="llama", token_logits={"\n": 2.0}
    )


@pytest.fixture(scope="module")
def setup(stepping_policy_dir, math500_rows):
    policy = load_policy(str(stepping_policy_dir), backend="hf")
    # PRM batches of one: a score computed over a cached prefix differs in its last float bits
    # (~1e-7) with what it is batched with, enough to reorder near-tied beams of this random
    # PRM; scores agree to 1e-5 at every batch size (test_prm_prefix_reuse.py).
    prm = load_tiny_prm("token_classifier", batch_size=1)
    problems = [Problem(r["problem"], policy.format_prompt(r["problem"])) for r in math500_rows(3)]
    return policy, prm, problems, AutoTokenizer.from_pretrained(stepping_policy_dir)


def run(setup, strategy, seed=0, problems=None):
    policy, prm, all_problems, _ = setup
    uses_prm = strategy in ("best_of_n", "beam_search", "dvts")
    return search(
        problems or all_problems,
        policy,
        prm if uses_prm else None,
        strategy=strategy,
        n=1 if strategy == "cot" else N,
        beam_size=M,
        voting="prm_vote" if uses_prm else "majority",
        seed=seed,
        **LIMITS,
    )


@pytest.mark.parametrize("strategy", list(EXPECTED_CANDIDATES))
def test_strategy_on_real_models(setup, strategy):
    policy, prm, problems, tokenizer = setup
    results = run(setup, strategy)
    assert len(results) == len(problems)
    for result in results:
        assert len(result.candidates) == EXPECTED_CANDIDATES[strategy]
        assert any(result.prediction is c for c in result.candidates)
        for c in result.candidates:
            # Steps concatenate to the text and hold a separator only at their end.
            assert "".join(c.steps) == c.text and all(STEP_SEPARATOR not in s.strip() for s in c.steps)
            if strategy in ("majority", "best_of_n", "cot"):
                # split_steps gives the white space after a separator to the step before it.
                assert all(STEP_SEPARATOR in step[len(step.rstrip()) :] for step in c.steps[:-1])
            # One token per character: the trajectory's tokens are its text's, plus EOS when it ended.
            text_tokens = len(tokenizer(c.text, add_special_tokens=False).input_ids)
            assert c.num_tokens == text_tokens + int(c.finished)
            assert c.num_tokens <= LIMITS["max_tokens"]
            uses_prm = strategy in ("best_of_n", "beam_search", "dvts")
            assert len(c.step_scores) == (len(c.steps) if uses_prm else 0)
            assert all(0.0 <= s <= 1.0 for s in c.step_scores)
        u = result.usage
        generated = sum(c.num_tokens for c in result.candidates)
        if strategy in ("majority", "best_of_n", "cot"):
            assert u.policy_output_tokens == generated  # every sample is a candidate
            assert u.policy_input_tokens == len(
                tokenizer(result_problem(problems, results, result).prompt, add_special_tokens=False).input_ids
            )
        else:
            assert u.policy_output_tokens > generated  # pruned beams cost tokens too
        assert (u.prm_tokens > 0) == uses_prm
        assert u.flops == pytest.approx(
            2 * policy.num_parameters * (u.policy_input_tokens + u.policy_output_tokens)
            + 2 * prm.num_parameters * u.prm_tokens
        )
        assert u.seconds > 0
    if strategy == "beam_search":
        # The tree search really took several steps on at least one problem.
        assert max(len(c.steps) for r in results for c in r.candidates) >= 2


def result_problem(problems, results, result):
    return problems[results.index(result)]


@pytest.mark.parametrize("strategy", ["majority", "beam_search"])
def test_seeded_search_is_deterministic_and_independent_of_the_batch(setup, strategy):
    _, _, problems, _ = setup
    first = [result_to_dict(r) for r in run(setup, strategy, seed=7)]
    again = [result_to_dict(r) for r in run(setup, strategy, seed=7)]
    alone = result_to_dict(run(setup, strategy, seed=7, problems=problems[1:2])[0])
    other = [result_to_dict(r) for r in run(setup, strategy, seed=8)]

    def strip(d):
        return {k: v for k, v in d.items() if k != "usage"} | {"usage": {**d["usage"], "seconds": 0}}

    assert [strip(d) for d in first] == [strip(d) for d in again]
    assert strip(alone) == strip(first[1])
    assert [d["candidates"] for d in other] != [d["candidates"] for d in first]

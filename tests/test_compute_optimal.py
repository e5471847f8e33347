"""Compute-optimal TTS: policy tables (the paper's default, validation) and the strategy's
exact behaviour on a scripted policy and PRM: the probe, the difficulty bucket, the bucket's
choice within the budget, its voting, and what the probe costs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scripted import ScriptedPolicy, ScriptedPRM

from tts_eval import Problem, search
from tts_eval.compute_optimal import PolicyTable, TableError, load_table
from tts_eval.compute_optimal.table import Choice, choice_strategies, concrete, fit_tree

PRM_NAME = "Qwen2.5-Math-PRM-7B"


@pytest.mark.parametrize(
    ("params", "task", "easy", "hard", "probe"),
    [
        (1.5e9, "math500_tts", "beam_search", "beam_search", 0),  # < 7B: beam search
        (3.2e9, "minerva_math500", "beam_search", "beam_search", 0),
        (7.6e9, "math500_tts", "dvts", "beam_search", 4),  # 7-32B: DVTS easy/medium, beam hard
        (32.8e9, "math500_tts", "dvts", "beam_search", 4),
        (72.7e9, "math500_tts", "best_of_n", "best_of_n", 0),  # > 32B: Best-of-N
        (8.0e9, "aime24_tts", "dvts", "dvts", 0),  # AIME: < 14B DVTS
        (14.7e9, "aime24_tts", "best_of_n", "best_of_n", 0),  # >= 14B Best-of-N
    ],
)
def test_paper_table_gives_the_papers_findings(params, task, easy, hard, probe):
    plan = load_table().resolve(policy_params=params, prm_name=PRM_NAME, task=task, budget=16)
    assert (plan.choices["easy"].strategy, plan.choices["medium"].strategy, plan.choices["hard"].strategy) == (
        easy,
        easy,
        hard,
    )
    assert plan.probe_n == probe  # a probe only where the buckets differ: N/4 = 4


def test_a_bad_table_is_one_error_naming_file_and_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    plan = (
        "name: bad\nrules:\n  - plans:\n      - budget: 4\n        easy: {strategy: %s}\n"
        "        medium: {strategy: majority}\n        hard: {strategy: majority, n: %d}\n"
    )
    bad.write_text(plan % ("cot", 4))
    with pytest.raises(TableError) as err:
        load_table(bad)
    assert str(bad) in str(err.value) and "field 'rules.0.plans.0.easy.strategy'" in str(err.value)
    assert "(got 'cot')" in str(err.value)
    bad.write_text(plan % ("majority", 8))
    with pytest.raises(TableError, match=r"field 'rules.0.plans.0': hard: n=8 exceeds the plan's budget 4"):
        load_table(bad)
    with pytest.raises(TableError, match="unknown policy table 'nope'"):
        load_table("nope")
    table = PolicyTable.model_validate(
        {
            "name": "t",
            "rules": [
                {
                    "task": "arith*",
                    "plans": [{"budget": 8, **{b: {"strategy": "majority"} for b in ("easy", "medium", "hard")}}],
                }
            ],
        }
    )
    with pytest.raises(TableError, match="no plan for budget n=4; use n >= 8"):
        table.resolve(policy_params=1, prm_name="p", task="arith_tts", budget=4)
    with pytest.raises(TableError, match="no rule for a policy of 1 parameters, PRM 'p' and task 'gsm8k'"):
        table.resolve(policy_params=1, prm_name="p", task="gsm8k", budget=8)


@pytest.mark.parametrize(
    ("left", "beam_size", "expected"), [(12, 4, (12, 4)), (14, 4, (12, 4)), (3, 4, (3, 3)), (2, 2, (2, 2))]
)
def test_tree_budget_fits_what_the_probe_leaves(left, beam_size, expected):
    assert fit_tree(left, beam_size) == expected


@settings(max_examples=300, deadline=None)
@given(strategy=st.sampled_from(choice_strategies()), budget=st.integers(1, 64), data=st.data())
def test_a_choice_after_the_probe_stays_within_the_budget(strategy, budget, data):
    n = data.draw(st.none() | st.integers(1, budget))
    probe = data.draw(st.integers(1, budget))
    beam_size = data.draw(st.integers(1, 8))
    run = concrete(Choice(strategy=strategy, n=n), budget=budget, probe_n=probe, beam_size=beam_size)
    if strategy in ("majority", "best_of_n"):  # the probe's solutions are the first of n
        assert run.keeps_probe and run.n == probe + run.new_samples == max(n or budget, probe) <= budget
    elif probe < budget and strategy == "particle_filtering":  # particles: what the probe leaves
        assert not run.keeps_probe and run.new_samples == run.n == min(n or budget, budget - probe)
        assert run.beam_size is None
    elif probe < budget:  # candidates per step: what the probe leaves, in whole beams
        assert not run.keeps_probe and run.new_samples == run.n <= min(n or budget, budget - probe)
        assert run.n % run.beam_size == 0 and run.beam_size <= beam_size
        assert run.n > min(n or budget, budget - probe) - beam_size  # rounded down by less than a beam
    else:  # the probe took the whole budget: its solutions are the candidates
        assert run.keeps_probe and run.new_samples == 0


# Problem A: the probe agrees on one answer -> easy -> majority over 8 solutions.
# Problem B: the probe has no answer -> hard -> beam search with the 8 - 2 candidates left.
P = "PROMPT:"
SCRIPT = {
    "A|": [("\\boxed{1}", "eos"), ("\\boxed{1}", "eos"), ("\\boxed{2}", "eos")],
    "B|": [("x\n\n", "stop"), ("y\n\n", "stop")],
    "B|x\n\n": [("\\boxed{7}", "eos")],
    "B|y\n\n": [("\\boxed{8}", "eos")],
}
SCORES = {"\\boxed{1}": 0.1, "\\boxed{2}": 0.99, "x": 0.9, "y": 0.1, "\\boxed{7}": 0.5, "\\boxed{8}": 0.6}
ROUTING_TABLE = {
    "name": "routing",
    "probe": {"fraction": 0.25, "min": 2},
    "difficulty": {"bias": 0.0, "agreement": 1.0, "prm": 0.0},
    "rules": [
        {
            "plans": [
                {
                    "budget": 8,
                    "easy": {"strategy": "majority"},
                    "medium": {"strategy": "best_of_n", "voting": "prm_vote"},
                    "hard": {"strategy": "beam_search", "beam_size": 2, "aggregation": "last", "voting": "prm_max"},
                }
            ]
        }
    ],
}


def test_probe_routes_each_problem_to_its_buckets_choice_within_the_budget():
    policy, prm = ScriptedPolicy(P, SCRIPT), ScriptedPRM(SCORES)
    problems = [Problem("qa", P + "A|"), Problem("qb", P + "B|")]
    # The run's voting (prm_max over min scores) is replaced by each bucket's.
    a, b = search(
        problems,
        policy,
        prm,
        strategy="compute_optimal",
        n=8,
        table=PolicyTable.model_validate(ROUTING_TABLE),
        voting="prm_max",
        aggregation="min",
        seed=0,
    )

    # A: the 2 probe solutions are the first of majority's 8; the other 6 are not scored.
    assert [c.answer for c in a.candidates] == ["1", "1", "2", "1", "1", "2", "1", "1"]
    assert [bool(c.step_scores) for c in a.candidates] == [True] * 2 + [False] * 6
    assert a.answer == "1"  # majority, though prm_max would pick the 0.99-scored "2"
    # B: beam search with K = 6 / 2 = 3 beams; its two results vote by the last score (8: .6 > 7: .5),
    # where the run's min aggregation would have chosen 7 (x .9, 7 .5 against y .1, 8 .6).
    assert [c.text for c in b.candidates] == ["y\n\n\\boxed{8}", "x\n\n\\boxed{7}"]
    assert b.answer == "8"

    # Round 1: both probes in one policy call; then A's rest and B's beam root (another
    # request shape: step stops); then B's two beams.
    assert [(c["n"], len(c["prompts"])) for c in policy.calls] == [(2, 2), (6, 1), (6, 1), (2, 2)]
    # The PRM scores the probes (2 + 2), B's distinct root steps (x, y) and their children.
    assert [len(batch) for batch in prm.calls] == [4, 2, 2]
    # The probe is paid for: A's usage holds all 8 solutions and only the probe's PRM tokens.
    assert a.usage.policy_output_tokens == sum(len(c.text) for c in a.candidates)
    assert a.usage.prm_tokens == 2 * (len("qa") + len("\\boxed{1}"))
    assert b.usage.policy_output_tokens == len("x\n\ny\n\n") + 3 * len("x\n\ny\n\n") + 2 * len("\\boxed{7}") * 2
    step = len("qb") + len("x\n\n")  # the scripted PRM counts the question and the steps' characters
    assert b.usage.prm_scored_tokens == 2 * step + 2 * step + 2 * (step + len("\\boxed{7}"))
    # The children inherit their parents' scores: the PRM computes their new step only.
    assert b.usage.prm_tokens == 2 * step + 2 * step + 2 * len("\\boxed{7}")


def test_a_plan_with_one_choice_draws_no_probe_and_equals_that_strategy():
    one_choice = {
        **ROUTING_TABLE,
        "rules": [
            {
                "plans": [
                    {
                        "budget": 1,
                        **{
                            b: {"strategy": "best_of_n", "voting": "prm_max", "aggregation": "last"}
                            for b in ("easy", "medium", "hard")
                        },
                    }
                ]
            }
        ],
    }
    problems = [Problem("qa", P + "A|")]
    policy, prm = ScriptedPolicy(P, SCRIPT), ScriptedPRM(SCORES)
    (optimal,) = search(
        problems, policy, prm, strategy="compute_optimal", n=4, table=PolicyTable.model_validate(one_choice), seed=3
    )
    (plain,) = search(
        problems,
        ScriptedPolicy(P, SCRIPT),
        ScriptedPRM(SCORES),
        strategy="best_of_n",
        n=4,
        voting="prm_max",
        aggregation="last",
        seed=3,
    )
    assert [c.text for c in optimal.candidates] == [c.text for c in plain.candidates]
    assert optimal.answer == plain.answer == "2"
    assert (optimal.usage.policy_output_tokens, optimal.usage.prm_tokens, optimal.usage.flops) == (
        plain.usage.policy_output_tokens,
        plain.usage.prm_tokens,
        plain.usage.flops,
    )
    assert [c["n"] for c in policy.calls] == [4]


def test_table_is_refused_by_other_strategies():
    with pytest.raises(ValueError, match="table= is only used by strategy=compute_optimal"):
        search(
            [Problem("qa", P + "A|")],
            ScriptedPolicy(P, SCRIPT),
            ScriptedPRM(SCORES),
            strategy="best_of_n",
            n=2,
            table="paper",
        )


def test_lm_eval_model_args_take_a_table_for_compute_optimal_only():
    from tts_eval.lm_eval.settings import ModelArgsError, parse_model_args

    base = {"policy": "p", "prm": "qwen2.5-math-prm-7b", "n": 8}
    args = parse_model_args({**base, "strategy": "compute_optimal", "table": "paper"})
    assert args.search_kwargs()["table"] == "paper" and args.resolved_temperature() == 0.7
    assert args.result_settings()["table_content"]["name"] == "paper"  # an edited table is another run
    assert "table" not in parse_model_args({**base, "strategy": "best_of_n"}).search_kwargs()
    with pytest.raises(ModelArgsError, match="'table=paper' is only used by strategy=compute_optimal"):
        parse_model_args({**base, "strategy": "best_of_n", "table": "paper"})
    with pytest.raises(ModelArgsError, match="'table=nope': unknown policy table 'nope'"):
        parse_model_args({**base, "strategy": "compute_optimal", "table": "nope"})
    with pytest.raises(ModelArgsError, match="strategy=compute_optimal needs a PRM"):
        parse_model_args({"policy": "p", "strategy": "compute_optimal", "n": 8})

"""Scoring continuations of already scored prefixes (``score_continuations``) gives the scores
of a fresh full scoring, whatever the batch size, padding side or cache cap, while the
transformers runtime computes only what no kept prefix covers; known scores are reused only
where the family's tokens of the prefix are those inside its extension."""

from __future__ import annotations

import functools
import math

import pytest
from prm_fixtures import FAMILIES, load_tiny_prm

from prm_backends.inputs import PRMInput
from prm_backends.runtime_base import scored_prefix

Q = "Solve $x^2 - 5x + 6 = 0$ and give the larger root."
A = [
    "We factor the quadratic.\n\n",
    "$x^2 - 5x + 6 = (x - 2)(x - 3)$.\n\n",
    "So $x - 2 = 0$ or $x - 3 = 0$.\n\n",
    "The answer is $\\boxed{3}$.",
]
B = ["We factor the quadratic.\n\n", "Roots: 2, 3.\n\n", "So the larger is $\\boxed{3}$."]
C = ["Use the formula.\n\n", "$x = (5 \\pm 1)/2$.\n\n", "$\\boxed{3}$"]


@functools.cache
def fresh(family: str):
    return load_tiny_prm(family, runtime_options={"prefix_cache_tokens": 0})


def prefix_length(prm, steps: list[str]) -> int:
    """Tokens up to the last score position of the solution's input."""
    return len(scored_prefix(prm.format.build(Q, steps)))


def grow(prm) -> list[tuple[list, list]]:
    """Three rounds of a small tree: samples sharing leading steps, then children of some of
    them (with their parents' scores), then grandchildren. Returns (items, results) per round."""
    rounds = []
    first = [(Q, A[:2], []), (Q, B[:2], []), (Q, C[:1], []), (Q, A[:1], [])]
    r1 = prm.score_continuations(first)
    second = [
        (Q, A[:3], r1[0].scores),
        (Q, [*A[:2], "Other.\n\n"], r1[0].scores),
        (Q, B, r1[1].scores),
        (Q, C[:2], r1[2].scores),
        (Q, C[:3], r1[2].scores),
    ]
    r2 = prm.score_continuations(second)
    third = [(Q, A, r2[0].scores), (Q, [*C, "Check: $3^2 - 15 + 6 = 0$.\n\n"], r2[4].scores)]
    r3 = prm.score_continuations(third)
    for items, results in ((first, r1), (second, r2), (third, r3)):
        rounds.append((items, results))
        want = fresh(prm.spec.family).score_batch([(q, steps) for q, steps, _ in items])
        for (_, steps, _), got, expected in zip(items, results, want):
            assert len(got.scores) == len(steps)
            assert got.scores == pytest.approx(expected, abs=1e-5)
            assert got.input_tokens == fresh(prm.spec.family).count_tokens([(Q, steps)])[0]
    return rounds


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(("batch_size", "padding_side"), [(1, "right"), (7, "right"), (7, "left")])
def test_continuations_equal_fresh_full_scores_and_compute_only_new_tokens(family, batch_size, padding_side):
    prm = load_tiny_prm(family, batch_size=batch_size, padding_side=padding_side)
    (first, r1), (second, r2), (third, r3) = grow(prm)
    # Round 1: A[:1] and the first step of A[:2] and B[:2] are one prefix, computed once.
    whole = sum(prefix_length(prm, steps) for _, steps, _ in first)
    shared = prefix_length(prm, A[:1])
    assert sum(r.computed_tokens for r in r1) == whole - 2 * shared
    # Rounds 2 and 3: every parent was kept, so each child runs its new tokens only (C[:3]
    # continues from C[:2], which the same call computes for the item that ends there).
    for items, results, parents in ((second, r2, [A[:2], A[:2], B[:2], C[:1], C[:2]]), (third, r3, [A[:3], C[:3]])):
        new = [prefix_length(prm, steps) - prefix_length(prm, parent) for (_, steps, _), parent in zip(items, parents)]
        assert [r.computed_tokens for r in results] == new
    # Only the last round's inputs stay cached: the others' beams died.
    assert prm.cache.tokens == sum(prefix_length(prm, steps) for _, steps, _ in third)

    # A cache holding about one prefix evicts parents before their children come: the scores
    # stay exact, more is computed, and the cap is never exceeded.
    cap = max(prefix_length(prm, steps) for _, steps, _ in second)
    small = load_tiny_prm(
        family, batch_size=batch_size, padding_side=padding_side, runtime_options={"prefix_cache_tokens": cap}
    )
    evicted = grow(small)
    assert small.cache.tokens <= cap and len(small.cache) <= 1
    computed = [sum(r.computed_tokens for r in results) for _, results in evicted]
    assert computed[1] > sum(r.computed_tokens for r in r2) and computed[2] > sum(r.computed_tokens for r in r3)
    assert all(c <= sum(r.input_tokens for r in results) for c, (_, results) in zip(computed, evicted))


@pytest.mark.parametrize("family", FAMILIES)
def test_one_call_mixing_a_continuation_with_whole_solutions_on_its_prefix(family):
    # As when a compute-optimal probe (whole samples) and beams of one problem share a call.
    prm = load_tiny_prm(family)
    (parent,) = prm.score_continuations([(Q, A[:2], [])])
    items = [(Q, A[:3], parent.scores), (Q, [*A[:3], "Next.\n\n"], []), (Q, A[:1], [])]
    got = prm.score_continuations(items)
    want = fresh(family).score_batch([(q, steps) for q, steps, _ in items])
    for g, w in zip(got, want):
        assert g.scores == pytest.approx(w, abs=1e-5)


class Remerged:
    """The family's format, except that a one-step solution's ids differ from the same step's
    ids inside a longer solution (as when a tokenizer merges across the step boundary)."""

    def __init__(self, fmt) -> None:
        self.inner = fmt

    def __getattr__(self, attr):
        return getattr(self.inner, attr)

    def build(self, question, steps):
        built = self.inner.build(question, steps)
        if len(steps) > 1:
            return built
        ids = list(built.input_ids)
        ids[built.score_positions[0] - 1] = ids[built.score_positions[0] - 2]
        return PRMInput(ids, built.score_positions)


@pytest.mark.parametrize("family", FAMILIES)
def test_known_scores_are_reused_only_where_the_prefix_tokenises_alike(family):
    prm = load_tiny_prm(family)
    want = fresh(family).score(Q, A[:2])
    # Known scores are taken as given (0.123 is no score this PRM gives): nothing recomputes them.
    (reused,) = prm.score_continuations([(Q, A[:2], [0.123])])
    assert reused.scores[0] == 0.123 and reused.scores[1] == pytest.approx(want[1], abs=1e-5)
    # A NaN among the known scores (a cut input) means the whole solution is scored afresh.
    (cut,) = prm.score_continuations([(Q, A[:2], [math.nan])])
    assert cut.scores == pytest.approx(want, abs=1e-5)

    prm.format = Remerged(prm.format)
    (rescored,) = prm.score_continuations([(Q, A[:2], [0.123])])
    if family == "value_head":  # tokenises step by step: its prefixes always extend alike
        assert rescored.scores[0] == 0.123
    else:  # the prefix's ids differ inside the extension: scored afresh, known score dropped
        assert rescored.scores == pytest.approx(want, abs=1e-5)
        assert rescored.computed_tokens == prefix_length(prm, A[:2])
    with pytest.raises(ValueError, match="3 known scores for a solution of 2 steps"):
        prm.score_continuations([(Q, A[:2], [0.5, 0.5, 0.5])])


class FromScratch:
    """The toy PRM scoring every candidate as a whole solution: the search before prefix reuse."""

    def __init__(self, prm) -> None:
        self.prm, self.name, self.num_parameters = prm, prm.name, prm.num_parameters

    def score_continuations(self, items):
        from prm_backends import Scored

        pairs = [(q, steps) for q, steps, _ in items]
        return [Scored(s, t, t) for s, t in zip(self.prm.score_batch(pairs), self.prm.count_tokens(pairs))]


@pytest.mark.slow
def test_toy_world_searches_are_unchanged_and_tree_searches_compute_a_fraction_of_the_prm_tokens():
    from tts_eval import search
    from tts_eval.toy import load_test_problems
    from tts_eval.toy.evaluate import as_problems, load_toy_policy, load_toy_prm

    policy = load_toy_policy("small")
    problems = as_problems(policy, load_test_problems()[350:354])
    before = FromScratch(load_toy_prm(runtime_options={"prefix_cache_tokens": 0}))
    reusing, evicting = load_toy_prm(), load_toy_prm(runtime_options={"prefix_cache_tokens": 400})
    for strategy in ("best_of_n", "beam_search", "dvts"):
        runs = [
            search(problems, policy, prm, strategy=strategy, n=16, aggregation="min", voting="prm_vote", seed=0)
            for prm in (before, reusing, evicting)
        ]
        for old, *new in zip(*runs):
            for result in new:
                assert result.answer == old.answer
                assert [c.steps for c in result.candidates] == [c.steps for c in old.candidates]
                for c, o in zip(result.candidates, old.candidates):
                    assert c.step_scores == pytest.approx(o.step_scores, abs=1e-5)
                assert result.usage.prm_scored_tokens == old.usage.prm_tokens
                assert result.usage.policy_output_tokens == old.usage.policy_output_tokens
        computed = sum(r.usage.prm_tokens for r in runs[1])
        assert computed < sum(r.usage.prm_tokens for r in runs[0]) / (3 if strategy != "best_of_n" else 1)
        assert computed <= sum(r.usage.prm_tokens for r in runs[2])


def test_results_written_before_prefix_reuse_count_their_prm_tokens_as_scored():
    from tts_eval.serialization import result_from_dict, result_to_dict
    from tts_eval.types import SearchResult, Trajectory, Usage

    t = Trajectory(steps=["\\boxed{1}"], step_scores=[0.5], finished=True, num_tokens=4, answer="1")
    old = result_to_dict(SearchResult("1", t, [t], Usage(10, 4, 300, 1.0, 0.5)))
    del old["usage"]["prm_scored_tokens"]  # as written before the PRM reused prefixes
    assert result_from_dict(old).usage == Usage(10, 4, 300, 1.0, 0.5, prm_scored_tokens=300)


def test_a_prm_without_score_continuations_is_refused_before_sampling():
    from scripted import ScriptedPolicy

    from tts_eval import Problem, search

    class OldPRM:  # the contract before continuations
        name, num_parameters = "old-prm", 10

        def score_batch(self, items):
            return [[0.5] * len(steps) for _, steps in items]

    policy = ScriptedPolicy("P:", {"": [("x \\boxed{1}", "eos")]})
    with pytest.raises(TypeError, match="'old-prm' has no score_continuations"):
        search([Problem("q", "P:")], policy, OldPRM(), strategy="best_of_n", n=2)
    assert policy.calls == []

"""Particle filtering: its exact choices on a scripted tree, its weights, and resampling
frequencies that follow the weights."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.stats import chisquare
from scripted import ScriptedPolicy, ScriptedPRM

from tts_eval import Problem, search
from tts_eval.strategies.particle_filtering import particle_weights, resample

P, Q = "PROMPT:", "question"
X, Y, F, D = "x \\boxed{5}", "y \\boxed{7}", "f \\boxed{6}", "d \\boxed{4}"
SCRIPT = {
    "": [("a\n\n", "stop"), ("b\n\n", "stop"), ("c\n\n", "stop"), (D, "eos")],
    "a\n\n": [(X, "eos"), ("e\n\n", "stop")],
    "b\n\n": [(Y, "eos")],
    "a\n\ne\n\n": [(F, "eos")],
}
# Odds s / (1 - s): a 2, b 1, c 0, d 1 | x 2, e 1, y 0 | f 9. With pf_temperature = 1 the
# weights are the odds normalised, and N * w is a whole number in both resamplings, so
# systematic resampling draws each particle exactly N * w times whatever its offset.
SCORES = {"a": 2 / 3, "b": 0.5, "c": 0.0, D: 0.5, X: 2 / 3, "e": 0.5, Y: 0.0, F: 0.9}


def run(**kw):
    policy, prm = ScriptedPolicy(P, SCRIPT), ScriptedPRM(SCORES)
    (result,) = search([Problem(Q, P)], policy, prm, strategy="particle_filtering", n=4, seed=0, **kw)
    return result, policy, prm


def test_scripted_tree_survivors_weights_and_final_vote():
    result, policy, prm = run(voting="prm_vote", aggregation="last")
    # Round 1: a, b, c, d (d finished) weigh 2:1:0:1 -> slots 0, 0, 1, 3 survive: a, a, b, d.
    # Round 2: the two a's write x (finished) and e, b writes y: x, e, y, d weigh 2:1:0:1
    # -> x, x, e, d. Round 3: only e is open; it writes f and every particle is finished.
    assert [c.text for c in result.candidates] == ["a\n\n" + X, "a\n\n" + X, "a\n\ne\n\n" + F, D]
    assert [c.step_scores for c in result.candidates][2] == [2 / 3, 0.5, 0.9]
    # One request per open particle, one sample each; finished copies are neither sampled nor rescored.
    assert [(c["n"], c["prompts"]) for c in policy.calls] == [
        (1, [P] * 4),
        (1, [P + "a\n\n", P + "a\n\n", P + "b\n\n"]),
        (1, [P + "a\n\ne\n\n"]),
    ]
    assert [len(batch) for batch in prm.calls] == [4, 3, 1]
    # Final weights from the newest scores: odds 2, 2, 9, 1 over 14.
    np.testing.assert_allclose(particle_weights([2 / 3, 2 / 3, 0.9, 0.5], 1.0), [2 / 14, 2 / 14, 9 / 14, 1 / 14])
    # prm_vote sums weights: 6 has 9/14 against 5's 4/14 (summed scores would pick 5: 1.33 > 0.9).
    assert result.answer == "6" and result.prediction is result.candidates[2]


@pytest.mark.parametrize(
    "voting, aggregation, answer",
    [
        ("majority", "last", "5"),  # two particles hold 5
        ("prm_max", "last", "6"),  # the heaviest particle
        ("prm_vote", "min", "5"),  # min: f's path weighs odds(.5) = 1, each x 2
    ],
)
def test_final_vote_uses_the_runs_voting_and_aggregation(voting, aggregation, answer):
    result, _, _ = run(voting=voting, aggregation=aggregation)
    assert len(result.candidates) == 4 and result.answer == answer


def test_multinomial_resampling_is_seeded_per_problem():
    first, _, _ = run(resampling="multinomial")
    again, _, _ = run(resampling="multinomial")
    assert [c.text for c in first.candidates] == [c.text for c in again.candidates]
    # Weightless particles (c, y) never survive; the draws are pinned for seed 0.
    assert [c.text for c in first.candidates] == ["a\n\n" + X, "a\n\n" + X, D, "a\n\n" + X]


def test_systematic_survivors_for_a_seed_follow_its_offset():
    # pf_temperature 0.5 squares the odds: a, b, c, d weigh 4:1:0:1, so N * w = 8/3, 2/3, 0,
    # 2/3 and the survivors depend on the resampling offset u, drawn from the problem's seed.
    from tts_eval.seeding import derive_seed

    result, _, _ = run(pf_temperature=0.5, max_steps=2)
    u = np.random.default_rng(derive_seed(derive_seed(0, P), "resample", 1)).random()
    bounds = np.array([4, 5, 5, 6]) / 6
    survivors = [next(i for i, b in enumerate(bounds) if (u + j) / 4 < b) for j in range(4)]
    assert 2 not in survivors and survivors.count(0) in (2, 3)
    texts, a_children = [], itertools.cycle(["a\n\n" + X, "a\n\ne\n\n"])  # a's children, as scripted
    for slot in survivors:
        texts.append(next(a_children) if slot == 0 else "b\n\n" + Y if slot == 1 else D)
    assert [c.text for c in result.candidates] == texts


def test_step_limit_ends_particles_as_they_are():
    result, policy, _ = run(max_steps=1)
    assert [c.text for c in result.candidates] == ["a\n\n", "b\n\n", "c\n\n", D]
    assert all(c.finished for c in result.candidates) and len(policy.calls) == 1


def test_weights_edge_cases():
    np.testing.assert_allclose(particle_weights([0.5, 0.9], 2.0), np.array([1, 3]) / 4)  # odds ** (1 / T)
    np.testing.assert_array_equal(particle_weights([1.0, 0.99, 1.0], 1.0), [0.5, 0, 0.5])
    np.testing.assert_array_equal(particle_weights([0.0, float("nan")], 1.0), [0.5, 0.5])
    np.testing.assert_allclose(particle_weights([float("nan"), 0.5], 1.0), [0, 1])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        particle_weights([1.5], 1.0)


@pytest.mark.parametrize("how", ["systematic", "multinomial"])
def test_resampling_frequencies_follow_the_weights(how):
    weights = particle_weights([0.9, 0.5, 0.2, 0.7, 0.05, 0.6, 0.35, 0.8], 1.0)
    n, draws = len(weights), 3000
    rng = np.random.default_rng(12345)
    counts = np.zeros(n)
    for _ in range(draws):
        drawn = resample(weights, how, rng)
        assert len(drawn) == n
        per_draw = np.bincount(drawn, minlength=n)
        if how == "systematic":  # low variance: every particle floor(N w) or ceil(N w) times
            assert np.all(per_draw >= np.floor(n * weights)) and np.all(per_draw <= np.ceil(n * weights))
        counts += per_draw
    expected = weights * n * draws
    assert chisquare(counts, expected).pvalue > 0.01
    # The same counts are far from uniform: the test can tell weights apart.
    assert chisquare(counts, np.full(n, n * draws / n)).pvalue < 1e-9


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"strategy": "beam_search", "pf_temperature": 0.5}, "only apply to strategy=particle_filtering"),
        ({"strategy": "particle_filtering", "pf_temperature": 0.0}, "pf_temperature must be a positive number"),
        ({"strategy": "particle_filtering", "resampling": "stratified"}, "unknown resampling 'stratified'"),
    ],
)
def test_bad_options_are_rejected_before_any_generation(kwargs, message):
    policy = ScriptedPolicy(P, SCRIPT)
    with pytest.raises(ValueError, match=message):
        search([Problem(Q, P)], policy, ScriptedPRM(SCORES), n=4, beam_size=2, **kwargs)
    assert policy.calls == []

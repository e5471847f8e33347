"""The strategies' exact choices on a scripted tree, and voting on hand-computed cases."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from scripted import ScriptedPolicy, ScriptedPRM

from tts_eval import Problem, Trajectory, search
from tts_eval.voting import vote

P = "PROMPT:"
Q = "question"
BOX4, BOX5 = "d \\boxed{4}", "a2 \\boxed{5}\n\n"

# Root continuations, then each kept prefix's children; scores are the PRM's per step.
SCRIPT = {
    "": [("a\n\n", "stop"), ("b\n\n", "stop"), ("c\n\n", "stop"), (BOX4, "eos")],
    "a\n\n": [("a1\n\n", "stop"), (BOX5, "stop")],
    "a\n\na1\n\n": [("y \\boxed{4}", "eos"), ("z\n\n", "stop")],
    "a\n\na1\n\nz\n\n": [("w\n\n", "stop"), ("w\n\n", "stop")],
    "a\n\na1\n\nz\n\nw\n\n": [("v\n\n", "stop")],
}
SCORES = {
    "a": 0.9,
    "b": 0.8,
    "c": 0.7,
    BOX4: 0.95,
    "a1": 0.6,
    BOX5.strip(): 0.5,
    "y \\boxed{4}": 0.2,
    "z": 0.4,
    "w": 0.1,
    "v": 0.1,
}


def run(strategy, n, beam_size, max_steps=40, problems=1, **kw):
    policy = ScriptedPolicy(P, SCRIPT)
    prm = ScriptedPRM(SCORES)
    results = search(
        [Problem(Q, P)] * problems,
        policy,
        prm,
        strategy=strategy,
        n=n,
        beam_size=beam_size,
        max_steps=max_steps,
        seed=0,
        **kw,
    )
    return results, policy, prm


def test_beam_search_keeps_best_k_minus_r_and_stops_at_step_limit():
    (result,), policy, prm = run("beam_search", n=4, beam_size=2, max_steps=4)
    # Step 1: N=4 root samples; ranked d .95, a .9, b .8, c .7; K=2 kept: d (finished -> result), a.
    # Step 2: a samples M=2; K-R=1 kept: a1 (.6) over the boxed a2 (.5).
    # Step 3: a1's children z (.4) > y (.2): z kept. Step 4: the two identical w's are one
    # candidate, kept, and at the step limit it becomes the second result.
    assert [c.text for c in result.candidates] == [BOX4, "a\n\na1\n\nz\n\nw\n\n"]
    assert [c.finished for c in result.candidates] == [True, False]
    assert result.candidates[1].step_scores == [0.9, 0.6, 0.4, 0.1]
    assert [(c["n"], len(c["prompts"])) for c in policy.calls] == [(4, 1), (2, 1), (2, 1), (2, 1)]
    assert [len(batch) for batch in prm.calls] == [4, 2, 2, 1]  # duplicates scored once
    assert result.answer == "4" and result.prediction is result.candidates[0]


def test_beam_search_ends_when_k_results_exist():
    (result,), policy, _ = run("beam_search", n=4, beam_size=4)  # K = 1
    assert [c.text for c in result.candidates] == [BOX4]
    assert len(policy.calls) == 1


def test_beam_search_unfinished_beams_become_results_at_token_limit():
    (result,), policy, _ = run("beam_search", n=4, beam_size=2, max_tokens=len("a\n\na1\n\n"))
    assert [c.text for c in result.candidates] == [BOX4, "a\n\na1\n\n"]
    # Each step may use at most what is left of the solution budget.
    assert [c["max_tokens"] for c in policy.calls] == [len("a\n\na1\n\n"), len("a1\n\n")]


def test_dvts_runs_independent_subtrees_that_keep_one_beam():
    (result,), policy, _prm = run("dvts", n=4, beam_size=2, max_steps=3)
    # Subtree 0 gets a, b: keeps a -> a1 -> z (step limit). Subtree 1 gets c, d: d is finished.
    assert [c.text for c in result.candidates] == ["a\n\na1\n\nz\n\n", BOX4]
    assert [(c["n"], len(c["prompts"])) for c in policy.calls] == [(2, 2), (2, 1), (2, 1)]
    assert result.answer == "4"


def test_all_problems_share_one_policy_call_and_one_prm_call_per_step():
    results, policy, prm = run("beam_search", n=4, beam_size=2, max_steps=4, problems=3)
    assert len(policy.calls) == len(prm.calls) == 4
    assert [len(c["prompts"]) for c in policy.calls] == [3, 3, 3, 3]
    for r in results:
        assert [c.text for c in r.candidates] == [BOX4, "a\n\na1\n\nz\n\nw\n\n"]


def test_best_of_n_scores_whole_samples_step_by_step():
    script = {"": [("s\n\nt \\boxed{5}", "eos"), ("u\n\nv \\boxed{4}", "eos"), ("w", "length")]}
    policy = ScriptedPolicy(P, script)
    prm = ScriptedPRM({"s": 0.9, "t \\boxed{5}": 0.3, "u": 0.5, "v \\boxed{4}": 0.6, "w": 0.99})
    (r,) = search([Problem(Q, P)], policy, prm, strategy="best_of_n", n=3, voting="prm_max", aggregation="min")
    assert [c.steps for c in r.candidates] == [["s\n\n", "t \\boxed{5}"], ["u\n\n", "v \\boxed{4}"], ["w"]]
    assert [c.finished for c in r.candidates] == [True, True, False]
    assert r.answer == "4"  # min: .3 vs .5; the unanswered w takes no part
    assert policy.calls == [{"prompts": [P], "n": 3, "max_tokens": 8192, "stop": []}]
    u = r.usage
    assert (u.policy_input_tokens, u.policy_output_tokens) == (len(P), sum(len(t) for t, _ in script[""]))
    assert u.prm_tokens == sum(len(Q) + len(t) for t, _ in script[""])
    assert u.flops == 2 * 1000 * (u.policy_input_tokens + u.policy_output_tokens) + 2 * 10 * u.prm_tokens


def test_best_of_n_with_a_prm_votes_with_it_by_default():
    # Answer 5 twice with a weak first step, answer 4 once and sound throughout.
    script = {"": [("s\n\nt \\boxed{5}", "eos"), ("s\n\nt \\boxed{5}", "eos"), ("u\n\nv \\boxed{4}", "eos")]}
    table = {"s": 0.1, "t \\boxed{5}": 0.9, "u": 0.8, "v \\boxed{4}": 0.85}

    def best_of_3(prm, **kw):
        (r,) = search([Problem(Q, P)], ScriptedPolicy(P, script), prm, strategy="best_of_n", n=3, seed=0, **kw)
        return r.answer

    assert best_of_3(ScriptedPRM(table), voting="majority") == "5"
    # Default prm_vote by min: 5 sums .1 + .1, 4 has .8 (by last, 5 would win: .9 + .9 vs .85).
    assert best_of_3(ScriptedPRM(table)) == "4" == best_of_3(ScriptedPRM(table), voting="prm_vote", aggregation="min")
    # A PRM whose spec recommends `last` is read by its last step unless the run says otherwise.
    recommends_last = ScriptedPRM(table)
    recommends_last.spec = SimpleNamespace(aggregation="last")
    assert best_of_3(recommends_last) == "5"
    assert best_of_3(recommends_last, aggregation="min") == "4"


def test_cot_is_greedy_and_majority_needs_no_prm():
    policy = ScriptedPolicy(P, {"": [("x \\boxed{1}", "eos"), ("y \\boxed{2}", "eos"), ("z \\boxed{2}", "eos")]})
    (cot,) = search([Problem(Q, P)], policy, strategy="cot")
    assert cot.answer == "1" and cot.candidates[0].step_scores == []
    (maj,) = search([Problem(Q, P)], policy, strategy="majority", n=3)
    assert maj.answer == "2"  # y, z, x handed out after x
    assert [c.answer for c in maj.candidates] == ["2", "2", "1"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"strategy": "greedy"}, "unknown strategy 'greedy'"),
        ({"strategy": "beam_search", "n": 6, "beam_size": 4}, "multiple of beam_size"),
        ({"strategy": "cot", "n": 4}, "n must be 1"),
        ({"strategy": "best_of_n", "n": 4, "prm": None}, "needs a PRM"),
        ({"strategy": "best_of_n", "n": 4, "aggregation": "max"}, "unknown aggregation 'max'"),
        ({"strategy": "best_of_n", "n": 4, "voting": "best"}, "unknown voting 'best'"),
        ({"strategy": "majority", "n": 4, "voting": "prm_vote", "prm": None}, "use voting=majority"),
        ({"strategy": "cot", "prm": "given"}, "does not use a PRM"),
    ],
)
def test_bad_settings_are_rejected_before_any_generation(kwargs, message):
    policy = ScriptedPolicy(P, SCRIPT)
    prm = kwargs.pop("prm", ScriptedPRM(SCORES))
    if prm == "given":
        prm = ScriptedPRM(SCORES)
    with pytest.raises(ValueError, match=message):
        search([Problem(Q, P)], policy, prm, **kwargs)
    assert policy.calls == []


def t(answer, scores):
    return Trajectory(steps=["s\n\n"] * len(scores), step_scores=scores, finished=True, answer=answer)


# Hand-computed: aggregated scores per candidate      min   last  avg    prod
CANDIDATES = [
    t("1/2", [0.9, 0.3]),  # c0                  .3    .3    .6     .27
    t("0.5", [0.5, 0.95]),  # c1                  .5    .95   .725   .475
    t("3", [0.7, 0.8]),  # c2                  .7    .8    .75    .56
    t("\\frac12", [0.2, 0.6]),  # c3                  .2    .6    .4     .12
    t(None, [1.0, 1.0]),  # c4: no answer, takes no part
    t("3.0", [0.9, 0.9]),  # c5                  .9    .9    .9     .81
]
# prm_vote sums: 1/2 = c0+c1+c3, 3 = c2+c5:  min 1.0 vs 1.6; last 1.85 vs 1.7; avg 1.725 vs 1.65; prod .865 vs 1.37


@pytest.mark.parametrize(
    "voting, aggregation, expected",
    [
        ("majority", "min", 0),
        ("majority", "last", 0),
        ("majority", "avg", 0),
        ("majority", "prod", 0),
        ("prm_max", "min", 5),
        ("prm_max", "last", 1),
        ("prm_max", "avg", 5),
        ("prm_max", "prod", 5),
        ("prm_vote", "min", 5),
        ("prm_vote", "last", 1),
        ("prm_vote", "avg", 1),
        ("prm_vote", "prod", 5),
    ],
)
def test_every_voting_and_aggregation(voting, aggregation, expected):
    assert vote(CANDIDATES, voting, aggregation) == expected


def test_vote_ties_go_to_generation_order_and_unanswered_pools_still_vote():
    tied = [t("2", [0.5]), t("7", [0.5]), t("7", [0.5]), t("2", [0.5])]
    assert vote(tied, "majority", "last") == 0
    assert vote(tied, "prm_max", "last") == 0
    assert vote(tied, "prm_vote", "last") == 0
    nothing = [t(None, [0.1]), t(None, [0.8]), t(None, [float("nan")])]
    assert vote(nothing, "majority", "last") == 0
    assert vote(nothing, "prm_max", "min") == 1


def test_search_command_reports_bad_settings_in_one_line_with_its_own_flags(tmp_path):
    from typer.testing import CliRunner

    from tts_eval.cli import app

    problems = tmp_path / "problems.jsonl"
    problems.write_text('{"problem": "1 + 1?", "answer": "2"}\n')
    base = ["search", str(problems), "-o", str(tmp_path / "out.jsonl"), "--policy", "/nonexistent/policy"]
    for extra, message in (
        (["--strategy", "best_of_n"], "Error: --strategy best_of_n needs a PRM: pass --prm <name or YAML path>"),
        (
            ["--strategy", "majority", "--voting", "prm_vote"],
            "Error: --voting prm_vote ranks candidates by PRM scores: use --voting majority",
        ),
        (["--strategy", "best_of_n", "--prm", "no-such-prm"], "Error: --prm no-such-prm: unknown PRM 'no-such-prm'"),
        (["--strategy", "majority"], "Error: --policy /nonexistent/policy: policy model directory not found"),
    ):
        result = CliRunner().invoke(app, base + extra)
        assert result.exit_code == 2, result.output
        assert result.output.startswith(message) and result.output.count("\n") == 1, result.output
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("terminal", [True, False])
def test_progress_is_shown_by_default_only_on_a_terminal(monkeypatch, terminal):
    import io

    class Stderr(io.StringIO):
        def isatty(self) -> bool:
            return terminal

    stderr = Stderr()
    monkeypatch.setattr("sys.stderr", stderr)
    search([Problem(Q, P)] * 2, ScriptedPolicy(P, {"": [("x \\boxed{1}", "eos")]}), strategy="majority", n=3, seed=0)
    assert ("majority n=3" in stderr.getvalue() and "2/2" in stderr.getvalue()) is terminal

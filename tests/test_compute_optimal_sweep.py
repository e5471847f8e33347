"""``tts-eval sweep`` on the toy world's small policy and PRM: the searches it runs, the
outcomes it derives from them (checked against direct votes on the stored candidates), its
FLOPs, and reuse of finished runs."""

from __future__ import annotations

import json

import pytest

from tts_eval.planning.plan import plan_table
from tts_eval.planning.sweep import SweepError, SweepProblem, SweepSettings, run_sweep
from tts_eval.serialization import result_from_dict
from tts_eval.strategies.particle_filtering import vote_particles
from tts_eval.toy import load_test_problems
from tts_eval.voting import vote

pytestmark = pytest.mark.slow

SETTINGS = dict(
    budgets=(2, 4),
    beam_size=2,
    aggregations=("min", "last"),
    max_tokens=96,
    max_step_tokens=24,
    strategies=("majority", "best_of_n", "beam_search", "dvts", "particle_filtering"),
    pf_temperature=0.5,
)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """The sweep, run through the ``tts-eval sweep`` command on the first 8 toy problems."""
    from typer.testing import CliRunner

    from tts_eval.cli import app
    from tts_eval.toy import TEST_FILE, model_dir
    from tts_eval.toy.evaluate import load_toy_policy, load_toy_prm

    out = tmp_path_factory.mktemp("sweep") / "toy"
    run = CliRunner().invoke(
        app,
        [
            "sweep",
            str(TEST_FILE),
            "--limit",
            "8",
            "--out",
            str(out),
            "--policy",
            str(model_dir("policy-small")),
            "--prm",
            "toy-prm",
            "--prm-model",
            str(model_dir("prm")),
            "--task",
            "arith_tts",
            "--budgets",
            "2,4",
            "--beam-size",
            "2",
            "--aggregations",
            "min,last",
            "--max-tokens",
            "96",
            "--max-step-tokens",
            "24",
            "--strategies",
            "majority,best_of_n,beam_search,dvts,particle_filtering",
            "--pf-temperature",
            "0.5",
        ],
    )
    assert run.exit_code == 0, run.output
    assert f"tts-eval plan {out}" in run.output
    toy = load_test_problems()[:8]
    problems = [SweepProblem(str(i), p.question, p.answer) for i, p in enumerate(toy)]
    return out, toy, problems, load_toy_policy("small"), load_toy_prm()


def read(out, name):
    return [json.loads(line) for line in (out / name).read_text().splitlines()]


def test_sweep_runs_each_search_once_and_derives_every_configuration(swept):
    from tts_eval.toy.evaluate import is_right

    out, toy, _, policy, _ = swept
    assert sorted(p.name for p in (out / "runs").iterdir()) == [
        "beam_search-n2-m2.jsonl",
        "beam_search-n4-m2.jsonl",
        "best_of_n-n4.jsonl",
        "dvts-n4-m2.jsonl",
        "particle_filtering-n2.jsonl",
        "particle_filtering-n4.jsonl",
    ]
    runs = {
        p.stem: [result_from_dict(r["result"]) for r in read(out, f"runs/{p.name}")] for p in (out / "runs").iterdir()
    }
    outcomes = {tuple(row["config"].values()): row for row in read(out, "outcomes.jsonl")}
    problems = read(out, "problems.jsonl")

    def right(problem, result, voting, aggregation="last"):
        return float(is_right(problem, result.candidates[vote(result.candidates, voting, aggregation)].answer))

    for i, (problem, row) in enumerate(zip(toy, problems)):
        bon = runs["best_of_n-n4"][i]
        flags = [is_right(problem, c.answer) for c in bon.candidates]
        assert row["pass_at_1"] == sum(flags) / 4 and [s["correct"] for s in row["samples"]] == flags
        # At the run's own budget the estimate is the run's vote; at budget 1 it is Pass@1.
        assert outcomes[("majority", 4, None, None, "majority")]["accuracy"][i] == right(problem, bon, "majority")
        for aggregation in ("min", "last"):
            for voting in ("prm_max", "prm_vote"):
                cell = outcomes[("best_of_n", 4, None, aggregation, voting)]
                assert cell["accuracy"][i] == right(problem, bon, voting, aggregation)
                assert cell["flops"][i] == pytest.approx(bon.usage.flops)
            assert outcomes[("best_of_n", 1, None, aggregation, "prm_max")]["accuracy"][i] == pytest.approx(
                row["pass_at_1"]
            )
        # Majority spends no PRM compute; a subset of 2 costs the prompt and half the solutions.
        u = bon.usage
        assert outcomes[("majority", 4, None, None, "majority")]["flops"][i] == pytest.approx(
            2 * policy.num_parameters * (u.policy_input_tokens + u.policy_output_tokens)
        )
        assert outcomes[("majority", 2, None, None, "majority")]["flops"][i] == pytest.approx(
            2 * policy.num_parameters * (u.policy_input_tokens + u.policy_output_tokens / 2)
        )
        # Tree searches: beam search from its own runs; DVTS at budget 2 from either of the
        # budget-4 run's two independent subtrees, each one result.
        dvts = runs["dvts-n4-m2"][i]
        for voting, aggregation in (("majority", None), ("prm_vote", "min"), ("prm_max", "last")):
            for n in (2, 4):
                beam = runs[f"beam_search-n{n}-m2"][i]
                assert outcomes[("beam_search", n, 2, aggregation, voting)]["accuracy"][i] == right(
                    problem, beam, voting, aggregation or "last"
                )
            assert outcomes[("dvts", 4, 2, aggregation, voting)]["accuracy"][i] == right(
                problem, dvts, voting, aggregation or "last"
            )
            assert outcomes[("dvts", 2, 2, aggregation, voting)]["accuracy"][i] == pytest.approx(
                sum(is_right(problem, c.answer) for c in dvts.candidates) / 2
            )
        assert outcomes[("beam_search", 4, 2, None, "majority")]["flops"][i] == pytest.approx(
            runs["beam_search-n4-m2"][i].usage.flops
        )
        # Particle filtering: its own run at each count, voted with its weights (at the sweep's temperature).
        for n in (2, 4):
            particles = runs[f"particle_filtering-n{n}"][i]
            assert len(particles.candidates) == n
            for voting, aggregation in (("majority", None), ("prm_vote", "min"), ("prm_max", "last")):
                chosen = vote_particles(particles.candidates, voting, aggregation or "last", 0.5)
                cell = outcomes[("particle_filtering", n, None, aggregation, voting)]
                assert cell["accuracy"][i] == float(is_right(problem, particles.candidates[chosen].answer))
                assert cell["flops"][i] == pytest.approx(particles.usage.flops)

    # A plan can be fitted on it and its table resolves for the toy policy.
    result = plan_table([out], name="toy", folds=2)
    plan = result.table.resolve(policy_params=policy.num_parameters, prm_name="Toy-PRM", task="arith_tts", budget=4)
    assert plan.plan_budget == 4


def test_sweep_reuses_finished_runs_and_refuses_other_settings(swept, monkeypatch):
    import importlib

    out, _, problems, policy, prm = swept
    before = (out / "outcomes.jsonl").read_text()

    def no_search(*args, **kwargs):
        raise AssertionError("a finished run was searched again")

    monkeypatch.setattr(importlib.import_module("tts_eval.search"), "search", no_search)
    run_sweep(problems, policy, prm, SweepSettings(**SETTINGS), out, task="arith_tts", log=lambda _: None)
    assert (out / "outcomes.jsonl").read_text() == before
    with pytest.raises(SweepError, match="holds a sweep with other settings"):
        run_sweep(problems, policy, prm, SweepSettings(**{**SETTINGS, "budgets": (2,)}), out, task="arith_tts")

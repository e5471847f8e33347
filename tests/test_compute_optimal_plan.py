"""``tts-eval plan`` on hand-made sweeps whose best choice per difficulty bucket and budget is
known: the table it writes, and the cross-validated accuracies it reports."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from tts_eval.compute_optimal import load_table
from tts_eval.planning.plan import format_report, plan_table
from tts_eval.planning.sweep import Config, SweepSettings

PER_BUCKET = 20
SAMPLES = 16
# Pass@1 of the bucket's problems and the PRM score of each of their samples: the probe's
# PRM score predicts Pass@1 exactly.
PASS_AT_1 = {"easy": 0.75, "medium": 0.25, "hard": 0.0}


def accuracy(config: Config, bucket: str) -> float:
    """Each configuration's accuracy on a bucket's problems. At budget 16 (probe 4) the best
    options are majority@4+ on easy (ties broken by FLOPs: n=4), Best-of-16 on medium and beam
    search@12 on hard (beam@16 is better but does not fit beside the probe); at budget 4
    (probe 2): majority@2, Best-of-2 and beam search@2 with one beam of width 2."""
    n, s = config.n, config.strategy
    if s == "majority":
        return {"easy": 0.8 if n == 1 else 1.0, "medium": 0.3, "hard": 0.0}[bucket]
    if s == "best_of_n":
        return {"easy": 0.9, "medium": 0.9 if n == 16 else 0.5, "hard": 0.0}[bucket]
    if s == "beam_search":
        return {"easy": 0.5, "medium": 0.4 if n == 16 else 0.3, "hard": {12: 0.6, 16: 0.7}.get(n, 0.3)}[bucket]
    return 0.2


def dominant(config: Config, bucket: str) -> float:
    """Best-of-16 is best everywhere: no probe can pay off."""
    return 1.0 if (config.strategy, config.n) == ("best_of_n", 16) else accuracy(config, bucket)


def write_sweep(folder, outcome=accuracy, policy_params=1000, task="arith_tts"):
    settings = SweepSettings(budgets=(4, 16), aggregations=("last",), votings=("majority", "prm_max"))
    buckets = [b for b in PASS_AT_1 for _ in range(PER_BUCKET)]
    folder.mkdir(parents=True)
    header = {
        "format": 1,
        "task": task,
        "policy": f"policy-{policy_params}",
        "policy_params": policy_params,
        "prm": "Toy-PRM",
        "prm_params": 500,
        "settings": settings.to_json(),
        "problems": [str(i) for i in range(len(buckets))],
        "runs": [],
    }
    (folder / "sweep.json").write_text(json.dumps(header))
    with open(folder / "problems.jsonl", "w") as f:
        for i, bucket in enumerate(buckets):
            # Right samples share answer class 0, wrong ones each have their own; every run of 4
            # samples (a probe) holds the same share of right ones.
            flags = [j % 4 < PASS_AT_1[bucket] * 4 for j in range(SAMPLES)]
            samples = [
                {
                    "class": 0 if ok else j + 1,
                    "correct": ok,
                    "scores": dict.fromkeys(("min", "last", "avg", "prod"), PASS_AT_1[bucket]),
                }
                for j, ok in enumerate(flags)
            ]
            f.write(
                json.dumps(
                    {
                        "id": str(i),
                        "gold": "1",
                        "pass_at_1": sum(flags) / SAMPLES,
                        "policy_input_tokens": 10,
                        "policy_output_tokens": 16 * SAMPLES,
                        "prm_tokens": 20 * SAMPLES,
                        "samples": samples,
                    }
                )
                + "\n"
            )
    configs = [Config("majority", n, None, None, "majority") for n in settings.sampling_sizes()]
    configs += [Config("best_of_n", n, None, "last", "prm_max") for n in settings.sampling_sizes()]
    configs += [Config(s, n, m, "last", "prm_max") for n, m in settings.tree_sizes() for s in ("beam_search", "dvts")]
    assert settings.tree_sizes() == [(2, 2), (4, 4), (12, 4), (16, 4)]
    with open(folder / "outcomes.jsonl", "w") as f:
        for c in configs:
            cost = {"majority": 100, "best_of_n": 150}.get(c.strategy, 200) * c.n
            f.write(
                json.dumps(
                    {
                        "config": asdict(c),
                        "accuracy": [outcome(c, b) for b in buckets],
                        "flops": [float(cost)] * len(buckets),
                    }
                )
                + "\n"
            )
    return folder


def labels(plan):
    return {b: getattr(plan, b).label() for b in ("easy", "medium", "hard")}


def test_plan_picks_the_known_best_per_bucket_and_reports_cross_validated_accuracy(tmp_path):
    result = plan_table([write_sweep(tmp_path / "sweep")], name="synthetic", folds=5, seed=0)
    (rule,) = result.table.rules
    assert rule.task == ["arith_tts"] and rule.prm == ["Toy-PRM"]
    small, large = rule.plans
    assert (small.budget, small.probe.n, large.budget, large.probe.n) == (4, 2, 16, 4)
    assert labels(small) == {
        "easy": "majority n=2",
        "medium": "best_of_n n=2 last prm_max",
        "hard": "beam_search n=2 M=2 last prm_max",
    }
    assert labels(large) == {
        "easy": "majority n=4",
        "medium": "best_of_n n=16 last prm_max",
        "hard": "beam_search n=12 M=4 last prm_max",
    }

    (reports,) = result.reports.values()
    r4, r16 = reports
    # Every held-out problem lands in its bucket, so the table scores its buckets' best options.
    assert r16.table.accuracy == pytest.approx((1.0 + 0.9 + 0.6) / 3)
    assert r16.single.accuracy == pytest.approx((0.9 + 0.9 + 0.0) / 3)  # Best-of-16 prm_max
    assert r4.table.accuracy == pytest.approx((1.0 + 0.5 + 0.3) / 3)
    assert r4.single.accuracy == pytest.approx((0.9 + 0.5 + 0.0) / 3)  # Best-of-4
    assert r4.bucket_accuracy == r16.bucket_accuracy == 1.0
    assert r16.single_option.config.label() == "best_of_n n=16 last prm_max"
    assert "0.833" in format_report(result)
    # The table against the best single strategy, paired on the same held-out problems.
    from tts_eval.planning.plan import versus_single
    from tts_eval.statistics import paired_difference, verdict

    difference = paired_difference(r16.table.per_problem, r16.single.per_problem)
    assert difference.estimate == pytest.approx(r16.table.accuracy - r16.single.accuracy)
    assert versus_single(r16).startswith(f"{verdict(difference)} ({100 * difference.estimate:+.1f} [")
    assert (
        versus_single(r16) in format_report(result)
        and versus_single(r16) == result.table.rules[0].plans[1].notes["vs_best_single"]
    )

    # The written table loads and resolves as planned, for larger budgets too.
    path = tmp_path / "table.yaml"
    path.write_text(result.table.to_yaml())
    table = load_table(path)
    plan = table.resolve(policy_params=1000, prm_name="toy-prm", task="arith_tts", budget=32)
    assert (plan.plan_budget, plan.probe_n) == (16, 4)
    assert plan.choices["hard"].label() == "beam_search n=12 M=4 last prm_max"
    assert plan.difficulty.bucket(_features(0.25)) == "medium"


def _features(score):
    from tts_eval.compute_optimal.difficulty import ProbeFeatures

    return ProbeFeatures(agreement=0.25, prm=score)


def test_plan_draws_no_probe_when_one_strategy_is_best_everywhere_and_splits_policy_sizes(tmp_path):
    sweeps = [
        write_sweep(tmp_path / "small", dominant, policy_params=1000),
        write_sweep(tmp_path / "large", accuracy, policy_params=100_000),
    ]
    result = plan_table(sweeps, name="two", folds=4, seed=1)
    small_rule, large_rule = result.table.rules
    # Policy sizes split at the geometric mean of the two policies.
    assert (small_rule.policy_params.min, small_rule.policy_params.max) == (0.0, pytest.approx(10_000))
    assert large_rule.policy_params.min == pytest.approx(10_000)
    large = small_rule.plans[1]
    assert large.probe is None and large.difficulty is None
    assert set(labels(large).values()) == {"best_of_n n=16 last prm_max"}
    path = tmp_path / "two.yaml"
    path.write_text(result.table.to_yaml())
    plan = load_table(path).resolve(policy_params=1000, prm_name="Toy-PRM", task="arith_tts", budget=16)
    assert plan.probe_n == 0
    plan = load_table(path).resolve(policy_params=50_000, prm_name="Toy-PRM", task="arith_tts", budget=16)
    assert plan.probe_n == 4 and plan.choices["easy"].label() == "majority n=4"


def test_plan_command_writes_the_table_and_prints_the_cross_validated_accuracy(tmp_path):
    from typer.testing import CliRunner

    from tts_eval.cli import app

    sweep = write_sweep(tmp_path / "sweep")
    out = tmp_path / "tables" / "toy.yaml"
    result = CliRunner().invoke(app, ["plan", str(sweep), "--out", str(out), "--folds", "4"])
    assert result.exit_code == 0, result.output
    assert "0.833" in result.output and f"wrote {out}" in result.output
    assert load_table(out).name == "toy"
    missing = CliRunner().invoke(app, ["plan", str(tmp_path / "nowhere"), "--out", str(out)])
    assert missing.exit_code == 2 and "no sweep.json; give folders written by tts-eval sweep" in missing.output


def test_bucket_edges_are_fitted_where_a_shrunken_estimate_separates_the_buckets():
    from tts_eval.compute_optimal.difficulty import fit_edges

    # An estimate pulled towards the mean: every value is in [0.2, 0.4], never past 0.5 or below 0.1.
    predicted = [0.20, 0.22, 0.28, 0.30, 0.33, 0.36, 0.38, 0.40]
    buckets = ["hard", "hard", "medium", "medium", "medium", "easy", "easy", "easy"]
    assert fit_edges(predicted, buckets) == (0.25, 0.345)
    # Separable at the paper's edges: they are kept where the midpoints allow.
    assert fit_edges([0.0, 0.05, 0.3, 0.35, 0.6, 0.7], ["hard"] * 2 + ["medium"] * 2 + ["easy"] * 2) == (0.175, 0.475)


def test_cross_validation_never_scores_a_problem_on_which_it_fitted(tmp_path):
    from tts_eval.planning import plan

    sweep = plan.read_sweep(write_sweep(tmp_path / "sweep"))
    count = len(sweep.ids)
    scored: list[int] = []

    def fit(train):
        return lambda i: (scored.append(i), (float(i not in train), 0.0))[1]

    assert plan.cross_validate(sweep, fit, folds=5, seed=0).accuracy == 1.0
    assert sorted(scored) == list(range(count))  # each problem scored once, held out

    # What a plan fits on its training problems does not depend on the other problems: make
    # DVTS perfect on the held-out half and scramble their samples, and nothing changes.
    held_out, train = plan.folds_of(count, 2, seed=0)

    def fitted(on):
        f = plan.fit_budget(sweep, on, 16)
        return f.probe_n, f.difficulty, {b: o.config for b, o in f.choices.items()}

    before = fitted(train)
    for config, (accuracy, _) in sweep.outcomes.items():
        for i in held_out:
            accuracy[i] = float(config.strategy == "dvts")
    for i in held_out:
        sweep.samples[i] = [
            {**s, "correct": not s["correct"], "scores": dict.fromkeys(s["scores"], 1.0)} for s in sweep.samples[i]
        ]
        sweep.pass_at_1[i] = 1.0 - sweep.pass_at_1[i]
    assert fitted(train) == before
    assert fitted(list(range(count))) != before  # while a fit that sees them does change

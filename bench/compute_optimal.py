"""Compute-optimal TTS in the offline toy world: a sweep of the small toy policy with the toy
PRM on arith_tts problems, the table ``tts-eval plan`` fits from it, and the paper's default
table, against every single strategy, at N = 4, 16, 64.

    python bench/compute_optimal.py                       # 160 problems, sweep kept in runs/
    python bench/compute_optimal.py --problems 100 --out /tmp/sweep --write-table yaml_configs/compute_optimal/toy.yaml

Prints, per budget N, accuracy and mean FLOPs per problem of:
- the fitted table, cross-validated (5 folds over problems: fitted on 4, scored on the 5th);
- the best single strategy within N, chosen on the same training folds;
- the paper's default table (for a policy this small: beam search, with the run's default
  aggregation ``last`` and voting ``majority``);
- each strategy at N alone, its aggregation and voting chosen on the training folds;
and the accuracy of the test-time difficulty estimate (probe of k solutions, estimate fitted
on the other folds) against the buckets of the problem's Pass@1 over 16 other samples.
With ``--deploy H`` it also runs the table fitted on the sweep's problems for real
(``strategy=compute_optimal``) on the next H problems, beside the best single strategy.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections import Counter
from datetime import date
from pathlib import Path

import torch

from tts_eval import search
from tts_eval.compute_optimal import BUCKETS, bucket_of, load_table
from tts_eval.compute_optimal.table import ParamRange, PolicyTable, Rule
from tts_eval.planning.plan import (
    budget_plan,
    choose_among,
    cross_validate,
    evaluate_budget,
    predicted_buckets,
    read_sweep,
    single_options,
    table_outcomes,
)
from tts_eval.planning.sweep import SweepProblem, SweepSettings, run_sweep
from tts_eval.statistics import accuracy_interval, paired_difference, verdict
from tts_eval.toy import load_test_problems
from tts_eval.toy.evaluate import as_problems, is_right, load_toy_policy, load_toy_prm

TASK = "arith_tts"
REFERENCE_SAMPLES = 16  # Pass@1 buckets of reference: 16 samples the probe does not use
RUN_AGGREGATION, RUN_VOTING, RUN_BEAM = "last", "majority", 4  # the run's defaults, for the paper table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--problems", type=int, default=160, help="the first K problems of the development half are swept"
    )
    parser.add_argument("--budgets", default="4,16,64")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-tokens", type=int, default=256, help="tokens per solution (toy solutions are short)")
    parser.add_argument(
        "--out", type=Path, help="sweep folder, reused when it holds this sweep (default: runs/compute-optimal-K)"
    )
    parser.add_argument("--write-table", type=Path, help="write the table fitted on all swept problems here")
    parser.add_argument(
        "--deploy", type=int, default=0, help="also run the fitted table for real on the next H problems"
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    args.out = args.out or Path("runs") / f"compute-optimal-{args.problems}"
    torch.set_num_threads(args.threads)
    started = time.time()

    toy = load_test_problems("development")  # tuning reads the development half only
    if args.problems + args.deploy > len(toy):
        parser.error(f"--problems + --deploy must fit in the {len(toy)} problems of the development half")
    swept = toy[: args.problems]
    policy, prm = load_toy_policy("small"), load_toy_prm()
    settings = SweepSettings(
        budgets=tuple(int(b) for b in args.budgets.split(",")),
        max_tokens=args.max_tokens,
        max_step_tokens=args.max_tokens,
        seed=args.seed,
    )
    print(
        f"{date.today()} on {platform.node() or 'this machine'} ({torch.get_num_threads()} torch thread(s), "
        f"{platform.processor() or platform.machine()})"
    )
    print(
        f"policy {policy.name} ({policy.num_parameters:,} parameters), PRM {prm.name} ({prm.num_parameters:,}); "
        f"{len(swept)} {TASK} problems; budgets {list(settings.budgets)}; probe = max(2, N/4)"
    )
    problems = [SweepProblem(str(i), p.question, p.answer) for i, p in enumerate(swept)]
    t0 = time.time()
    run_sweep(problems, policy, prm, settings, args.out, task=TASK, progress=False)
    sweep_seconds = time.time() - t0
    sweep = read_sweep(args.out)
    print(f"sweep: {sweep_seconds:.0f} s ({', '.join(r.file_name for r in settings.runs())})\n")

    paper = load_table("paper")
    reports = {}
    rows = []
    for budget in settings.budgets:
        report = evaluate_budget(sweep, budget, args.folds, args.seed)
        reports[budget] = report
        rows.append(
            (budget, "fitted table (cross-validated)", report.table.accuracy, report.table.flops, _choices(report))
        )
        rows.append(
            (
                budget,
                "best single strategy within N (CV)",
                report.single.accuracy,
                report.single.flops,
                report.single_option.config.label(),
            )
        )
        plan = paper.resolve(policy_params=policy.num_parameters, prm_name=prm.name, task=TASK, budget=budget)
        outcomes = table_outcomes(sweep, plan, beam_size=RUN_BEAM, aggregation=RUN_AGGREGATION, voting=RUN_VOTING)
        rows.append(
            (
                budget,
                "paper's default table",
                _mean(a for a, _, _ in outcomes),
                _mean(f for _, f, _ in outcomes),
                " | ".join(c.label() for c in plan.choices.values()) + f" ({RUN_AGGREGATION}, {RUN_VOTING})",
            )
        )
        for strategy in settings.strategies:
            options = [
                o for o in single_options(sweep, budget) if o.config.strategy == strategy and o.config.n == budget
            ]
            if not options:
                continue
            scored = cross_validate(sweep, choose_among(options), args.folds, args.seed)
            best = max(options, key=lambda o: _mean(o.accuracy))
            rows.append(
                (budget, f"  {strategy}", scored.accuracy, scored.flops, f"best variant on all: {best.config.label()}")
            )
    print(f"{'N':>3}  {'setup':<36} {'accuracy':>8}  {'FLOPs/problem':>13}  what runs")
    for budget, name, accuracy, flops, what in rows:
        print(f"{budget:>3}  {name:<36} {accuracy:>8.3f}  {flops:>13.3g}  {what}")

    print(
        f"\nTest-time difficulty estimate vs buckets of Pass@1 over {REFERENCE_SAMPLES} other samples "
        f"(the last {REFERENCE_SAMPLES} of {settings.largest}; estimate fitted on the other folds):"
    )
    reference = [
        bucket_of(sum(s["correct"] for s in samples[-REFERENCE_SAMPLES:]) / REFERENCE_SAMPLES)
        for samples in sweep.samples
    ]
    print(f"  reference buckets: {dict(Counter(reference))}")
    for budget in settings.budgets:
        k = settings.probe_size(budget)
        if k > settings.largest - REFERENCE_SAMPLES:
            print(f"  N={budget}: probe of {k} overlaps the reference samples; skipped")
            continue
        predicted = predicted_buckets(sweep, k, args.folds, args.seed)
        hits = _mean(p == r for p, r in zip(predicted, reference))
        confusion = Counter(zip(reference, predicted))
        matrix = "; ".join(f"{r}->" + ",".join(f"{p}:{confusion[(r, p)]}" for p in BUCKETS) for r in BUCKETS)
        print(f"  N={budget:>2} (probe {k:>2}): {hits:.3f} of problems in their bucket   [{matrix}]")

    if args.write_table or args.deploy:
        rule = Rule(
            task=[TASK],
            prm=[prm.name],
            policy_params=ParamRange(),
            plans=[budget_plan(sweep, reports[b]) for b in settings.budgets],
        )
        table = PolicyTable(
            name="toy",
            description=f"Fitted by bench/compute_optimal.py (tts-eval plan) on {policy.name} + {prm.name}, "
            f"{len(swept)} {TASK} problems, {date.today()}",
            rules=[rule],
        )
        if args.write_table:
            args.write_table.write_text(table.to_yaml(), encoding="utf-8")
            print(f"\nwrote {args.write_table}")
        if args.deploy:
            _deploy(toy[args.problems : args.problems + args.deploy], policy, prm, table, reports, settings, args)
    print(f"\ntotal {time.time() - started:.0f} s")


def _deploy(held_out, policy, prm, table, reports, settings, args) -> None:
    """The fitted table run for real on problems it was not fitted on, beside the best single
    strategy (chosen on the swept problems) on the same problems."""
    print(f"\nDeployed on the next {len(held_out)} problems (not swept):")
    problems = as_problems(policy, held_out)
    limits = {"max_tokens": args.max_tokens, "max_step_tokens": args.max_tokens, "seed": args.seed}
    for budget in settings.budgets:
        t0 = time.time()
        optimal = search(problems, policy, prm, strategy="compute_optimal", n=budget, table=table, task=TASK, **limits)
        c = reports[budget].single_option.config
        scorer = None if c.strategy == "majority" else prm
        single = search(
            problems,
            policy,
            scorer,
            strategy=c.strategy,
            n=c.n,
            beam_size=c.beam_size or settings.beam_size,
            aggregation=c.aggregation or "last",
            voting=c.voting,
            **limits,
        )
        right = {}
        for name, results in (("compute_optimal (fitted table)", optimal), (f"best single: {c.label()}", single)):
            right[name] = [float(is_right(p, r.answer)) for p, r in zip(held_out, results)]
            interval = accuracy_interval(right[name])
            flops = _mean(r.usage.flops for r in results)
            print(
                f"  N={budget:>2}  {name:<45} {interval.estimate:.3f} [{interval.low:.3f}, {interval.high:.3f}]  "
                f"{flops:.3g} FLOPs/problem"
            )
        difference = paired_difference(*right.values())
        print(
            f"        table - best single: {100 * difference.estimate:+.1f} points [{100 * difference.low:+.1f}, "
            f"{100 * difference.high:+.1f}] (paired, 95%): the table {verdict(difference)} the best single strategy"
        )
        print(f"        ({time.time() - t0:.0f} s)")


def _choices(report) -> str:
    fitted = report.fitted
    if fitted.difficulty is None:
        return f"no probe: {fitted.choices[BUCKETS[0]].config.label()}"
    return f"probe {fitted.probe_n}: " + " | ".join(f"{b}: {fitted.choices[b].config.label()}" for b in BUCKETS)


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


if __name__ == "__main__":
    main()

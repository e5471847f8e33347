"""The sweep (what ``tts-eval plan`` reads) and the leaderboard count the same FLOPs for the
same run at the same smaller budget: one rule, ``tts_eval.flops.at_budget``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leaderboard.rows import derived_rows, measured_row
from leaderboard.runs import ProblemOutcome, Run, RunSettings, TaskResult
from tts_eval.planning.sweep import OUTCOMES_FILE, SearchRun, SweepProblem, SweepSettings, write_outcomes
from tts_eval.types import SearchResult, Trajectory, Usage

POLICY_PARAMS, PRM_PARAMS = 1_000_000, 2_000_000
PROBLEMS = [SweepProblem("a", "1 + 1?", "2"), SweepProblem("b", "2 + 2?", "4")]
# Per problem: (policy input, policy output, PRM) tokens of the run; long prompts, so a rule
# that scaled the prompt would be far off.
BON_TOKENS = {"a": (100, 60, 300), "b": (400, 200, 500)}
DVTS_TOKENS = {"a": (220, 80, 240), "b": (300, 120, 600)}
ANSWERS = {"a": ["2", "3", "2", "5"], "b": ["4", "4", "1", "7"]}


def _result(problem: SweepProblem, answers: list[str], tokens: tuple[int, int, int]) -> SearchResult:
    candidates = [
        Trajectory(steps=[f"so \\boxed{{{a}}}"], step_scores=[0.1 + 0.2 * j], finished=True, num_tokens=5, answer=a)
        for j, a in enumerate(answers)
    ]
    i, o, r = tokens
    usage = Usage(i, o, r, flops=2.0 * (POLICY_PARAMS * (i + o) + PRM_PARAMS * r), prm_scored_tokens=r)
    return SearchResult(candidates[0].answer, candidates[0], candidates, usage)


def _run(strategy: str, n: int, beam_size: int | None, results: list[SearchResult]) -> Run:
    settings = RunSettings(
        model_source="tts",
        policy="org/Policy",
        prm="prm",
        strategy=strategy,
        n=n,
        beam_size=beam_size,
        voting="prm_vote",
        aggregation="last",
        temperature=0.7,
        policy_params=POLICY_PARAMS,
        prm_params=PRM_PARAMS,
    )
    outcomes = []
    for problem, result in zip(PROBLEMS, results):
        u = result.usage
        outcomes.append(
            ProblemOutcome(
                problem_id=problem.id,
                level=None,
                gold=problem.gold,
                correct=result.answer == problem.gold,
                candidates=result.candidates,
                chosen=0,
                candidate_correct=[c.answer == problem.gold for c in result.candidates],
                policy_tokens=float(u.policy_input_tokens + u.policy_output_tokens),
                policy_input_tokens=float(u.policy_input_tokens),
                prm_tokens=float(u.prm_tokens),
                prm_scored_tokens=float(u.prm_scored_tokens),
            )
        )
    task = TaskResult("math500_tts", "MATH-500", Path(f"{strategy}.jsonl"), outcomes, benchmark_size=None)
    return Run(Path(f"results_{strategy}.json"), settings, {"MATH-500": task})


def test_sweep_and_leaderboard_count_the_same_flops_for_a_run_at_a_smaller_budget(tmp_path):
    bon = [_result(p, ANSWERS[p.id], BON_TOKENS[p.id]) for p in PROBLEMS]
    dvts = [_result(p, ANSWERS[p.id][:2], DVTS_TOKENS[p.id]) for p in PROBLEMS]  # 2 subtrees of M = 2
    settings = SweepSettings(
        budgets=(4,),
        strategies=("majority", "best_of_n", "dvts"),
        aggregations=("last",),
        votings=("majority", "prm_vote"),
        beam_size=2,
    )
    assert settings.runs() == [SearchRun("best_of_n", 4), SearchRun("dvts", 4, 2)]
    write_outcomes(
        tmp_path,
        PROBLEMS,
        {SearchRun("best_of_n", 4): bon, SearchRun("dvts", 4, 2): dvts},
        settings,
        POLICY_PARAMS,
        PRM_PARAMS,
    )
    sweep = {}
    for line in (tmp_path / OUTCOMES_FILE).read_text().splitlines():
        row = json.loads(line)
        c = row["config"]
        sweep[(c["strategy"], c["n"], c["voting"])] = sum(row["flops"]) / len(row["flops"])

    board = {}
    for run in (_run("best_of_n", 4, None, bon), _run("dvts", 4, 2, dvts)):
        for row in [measured_row(run), *derived_rows(run, max_subsets=200, seed=0)]:
            board[(row.setup.strategy, row.setup.n, row.setup.voting, row.kind)] = row.flops("MATH-500")

    compared = 0
    for (strategy, n, voting), flops in sweep.items():
        assert board[(strategy, n, voting, "derived")] == pytest.approx(flops, rel=1e-12), (strategy, n, voting)
        compared += 1
    assert compared == 3 + 3 + 2 * 2  # majority and Best-of-N at 1, 2, 4; DVTS at 2 and 4, two votings
    # At the run's own budget both equal the run's recorded FLOPs.
    assert board[("best_of_n", 4, "prm_vote", "measured")] == pytest.approx(
        sweep[("best_of_n", 4, "prm_vote")], rel=1e-12
    )

    # Independent reference: Best-of-N at 2 sends each prompt once, generates and scores half.
    def bon_at_2(i: int, o: int, r: int) -> float:
        return 2 * POLICY_PARAMS * (i + o / 2) + 2 * PRM_PARAMS * r / 2

    assert sweep[("best_of_n", 2, "prm_vote")] == pytest.approx(sum(bon_at_2(*t) for t in BON_TOKENS.values()) / 2)
    assert sweep[("majority", 1, "majority")] == pytest.approx(
        sum(2 * POLICY_PARAMS * (i + o / 4) for i, o, _ in BON_TOKENS.values()) / 2
    )
    # DVTS at 2 is one of its two subtrees: each subtree sent its own requests, so all of it halves.
    assert sweep[("dvts", 2, "prm_vote")] == pytest.approx(sum(r.usage.flops for r in dvts) / 2 / 2)

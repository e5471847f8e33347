"""The explanations printed under every leaderboard (Markdown and HTML)."""

from __future__ import annotations


def notes(max_subsets: int) -> list[str]:
    return [
        "Measured rows are a run's own accuracy as lm-eval graded it. Published rows are figures "
        "printed in the reference paper; they were not measured here.",
        "Derived rows (maj@N, prm_max@N, prm_vote@N, pass@N, any_final@N of a larger run) estimate a run at a smaller "
        "budget from the candidates a Best-of-N, majority or DVTS run stored (DVTS: whole subtrees): "
        "the mean over all size-k subsets of the candidates of whether the subset's vote is right. "
        "pass@k and prm_max@k are computed exactly; maj@k and prm_vote@k enumerate every subset when "
        f"there are at most {max_subsets}, and otherwise average {max_subsets} uniformly drawn, seeded "
        "subsets (an unbiased Monte-Carlo estimate).",
        "Tokens per problem: the policy's prompt and generated tokens plus, for setups with a PRM, the "
        "tokens the PRM read; a derived row counts what a run at k would process: Best-of-N and majority send "
        "the prompt once whatever k, so only their generated and PRM tokens scale by k/N, while DVTS subtrees "
        "each send their own prompts, so all of a DVTS run's tokens scale. Inference FLOPs = 2 x parameters x "
        "tokens, policy plus PRM. Pre-training FLOPs = 6 x parameters x training tokens (or as published).",
        "pass@k rows are an oracle (right if any of k independent samples is) and no strategy. A tree search's "
        "candidates are its final beams, not samples of the policy: for DVTS the oracle is shown as 'any final "
        "candidate correct' (over k subtrees), and no tree-search row has a Pass@1 or pass@k of its own.",
        "Difficulty: each task's own grade (MATH level, the toy task's number of operations), and the paper's "
        "buckets of the policy's Pass@1 on each problem (easy [50%, 100%], medium [10%, 50%), hard [0%, 10%)), "
        "taken from sampled (temperature > 0) Best-of-N or majority runs of the same policy on the same task; "
        "without such a run there are no buckets.",
        "Brackets hold 95% percentile bootstrap intervals (10,000 seeded resamples): over problems for "
        "measured accuracies; over problems and then each problem's size-k subsets for derived ones; "
        "for an average over benchmarks, each benchmark's problems on their own. Published figures carry none. Paired comparisons resample the "
        'problems two setups share and give the difference in percentage points; a setup "beats" '
        'another only when that interval lies above zero, "trails" when it lies below, and '
        '"ties" otherwise.',
    ]


# Introductions of the leaderboard's sections (Markdown and HTML alike).
HEADLINE_TEXT = (
    "Each policy's most accurate test-time-scaling setup (measured or derived; pass@k left out) against the CoT "
    "of every larger policy, measured here or published. The difference and its verdict are paired, on the "
    "problems both have (published figures have no per-problem outcomes); FLOPs: the setup's inference FLOPs per "
    "problem over the CoT's."
)
FRONTIER_TEXT = (
    "for each inference-FLOPs budget, the most accurate measured or derived setup within it (the rows no other "
    "row beats at less or equal compute)."
)
COMPACT_TEXT = (
    "The measured runs, one row per policy, PRM, strategy and N (its most accurate voting). Accuracies in "
    "percent with their 95% bootstrap intervals in brackets; tokens and FLOPs per problem; columns no row fills "
    "are left out."
)
REST_TEXT = (
    "Accuracies at smaller budgets derived from the runs' candidates, measured rows of other votings, and the "
    "published figures of the reference paper."
)

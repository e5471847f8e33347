"""The search engine: runs any strategy over many problems in lock-step.

Each round gathers the expansions of every unfinished unit of every problem, samples them
in one batched policy call (one per distinct request shape, which only differs when a
trajectory nears its token limit) and scores every new child in one batched PRM call.
"""

from __future__ import annotations

import math
import random
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from os import PathLike
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from tts_eval.flops import TokenCounts
from tts_eval.protocols import Policy, ProcessRewardModel
from tts_eval.scoring import AGGREGATIONS
from tts_eval.search_options import DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE, default
from tts_eval.seeding import derive_seed
from tts_eval.strategies import STRATEGIES
from tts_eval.strategies.base import Expansion, SearchSettings, SearchUnit, Strategy, extend
from tts_eval.types import Problem, SearchResult, Trajectory, Usage
from tts_eval.voting import MAJORITY_VOTE, VOTINGS, recommended_aggregation, resolve_vote_settings

if TYPE_CHECKING:
    from tts_eval.compute_optimal.table import PolicyTable


def validate_settings(
    strategy: str,
    *,
    n: int,
    beam_size: int,
    aggregation: str | None,
    voting: str | None,
    has_prm: bool,
    cli: bool = False,
    pf_temperature: float | None = None,
    resampling: str | None = None,
) -> None:
    """Check a search's settings before any model is loaded; raise ``ValueError`` naming
    the setting and the fix. ``cli``: name settings as ``tts-eval search`` flags (``--prm``)
    instead of keyword / model_args settings (``prm=``)."""

    def say(name: str, value: object) -> str:
        return f"--{name.replace('_', '-')} {value}" if cli else f"{name}={value}"

    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    spec = STRATEGIES[strategy]
    if n < 1:
        raise ValueError(f"{say('n', n)}: n must be at least 1")
    if spec.single_sample and n != 1:
        samplers = _names(lambda s: s.independent_samples and not s.single_sample)
        raise ValueError(
            f"{say('strategy', strategy)} writes one solution, so n must be 1 (got {say('n', n)}); use {samplers} to sample more"
        )
    if spec.tree:
        if beam_size < 1:
            raise ValueError(f"{say('beam_size', beam_size)}: beam_size must be at least 1")
        if n % beam_size:
            raise ValueError(
                f"{say('strategy', strategy)} needs n to be a multiple of beam_size (got {say('n', n)}, {say('beam_size', beam_size)})"
            )
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {aggregation!r}; choose one of {', '.join(AGGREGATIONS)}")
    if voting not in VOTINGS:
        raise ValueError(f"unknown voting {voting!r}; choose one of {', '.join(VOTINGS)}")
    if spec.needs_prm and not has_prm:
        raise ValueError(f"{say('strategy', strategy)} needs a PRM: pass {say('prm', '<name or YAML path>')}")
    if not spec.needs_prm and has_prm:
        scorers = _names(lambda s: s.independent_samples and s.needs_prm)
        raise ValueError(
            f"{say('strategy', strategy)} does not use a PRM: drop {say('prm', '...')}, or use {scorers} to score its samples"
        )
    if voting != MAJORITY_VOTE and not has_prm:
        raise ValueError(
            f"{say('voting', voting)} ranks candidates by PRM scores: use {say('voting', MAJORITY_VOTE)}, or a PRM strategy"
        )
    _validate_particle_options(strategy, pf_temperature, resampling)


def vote_settings_for(
    strategy: str, *, voting: str | None, aggregation: str | None, recommended: str | None
) -> tuple[str | None, str | None]:
    """The voting and aggregation ``strategy`` uses (``resolve_vote_settings``); for an
    unknown strategy, the given ones (``validate_settings`` then names the strategy)."""
    if strategy not in STRATEGIES:
        return voting, aggregation
    return resolve_vote_settings(
        STRATEGIES[strategy].needs_prm, voting=voting, aggregation=aggregation, recommended=recommended
    )


def checked_vote_settings(
    strategy: str,
    *,
    n: int,
    beam_size: int,
    voting: str | None,
    aggregation: str | None,
    recommended: str | None,
    has_prm: bool,
    cli: bool = False,
    pf_temperature: float | None = None,
    resampling: str | None = None,
) -> tuple[str, str]:
    """The voting and aggregation ``strategy`` uses (:func:`vote_settings_for`), once
    :func:`validate_settings` has accepted them with the search's other settings; raises its
    ``ValueError`` otherwise."""
    voting, aggregation = vote_settings_for(strategy, voting=voting, aggregation=aggregation, recommended=recommended)
    validate_settings(
        strategy,
        n=n,
        beam_size=beam_size,
        aggregation=aggregation,
        voting=voting,
        has_prm=has_prm,
        cli=cli,
        pf_temperature=pf_temperature,
        resampling=resampling,
    )
    assert voting is not None and aggregation is not None  # validate_settings accepted them
    return voting, aggregation


def _names(which: Callable[[Strategy], bool], sep: str = " or ") -> str:
    """The registered strategies with a trait, for messages that suggest one."""
    return sep.join(s.name for s in STRATEGIES.values() if which(s))


def _validate_particle_options(strategy: str, pf_temperature: float | None, resampling: str | None) -> None:
    from tts_eval.strategies.particle_filtering import RESAMPLINGS

    given = [k for k, v in (("pf_temperature", pf_temperature), ("resampling", resampling)) if v is not None]
    if given and not set(given) <= set(STRATEGIES[strategy].options):
        users = _names(lambda s: set(given) <= set(s.options), sep=" or strategy=")
        raise ValueError(f"{' and '.join(given)} only apply to strategy={users}, not strategy={strategy}; drop them")
    if pf_temperature is not None and not (pf_temperature > 0 and math.isfinite(pf_temperature)):
        raise ValueError(f"pf_temperature must be a positive number, got {pf_temperature}")
    if resampling is not None and resampling not in RESAMPLINGS:
        raise ValueError(f"unknown resampling {resampling!r}; choose one of {', '.join(RESAMPLINGS)}")


def search(
    problems: Sequence[Problem],
    policy: Policy,
    prm: ProcessRewardModel | None = None,
    *,
    strategy: str,
    n: int = default("n"),
    beam_size: int = default("beam_size"),
    aggregation: str | None = None,
    voting: str | None = None,
    temperature: float | None = None,
    top_p: float = default("top_p"),
    max_tokens: int | None = None,
    max_step_tokens: int = default("max_step_tokens"),
    max_steps: int = default("max_steps"),
    stop: Sequence[str] | None = None,
    seed: int | None = None,
    progress: bool | None = None,
    table: str | PathLike | PolicyTable | None = None,
    task: str | Sequence[str | None] | None = None,
    pf_temperature: float | None = None,
    resampling: str | None = None,
    max_problems: int | None = None,
) -> list[SearchResult]:
    """Search every problem with ``strategy`` at budget ``n``; one result per problem, in order.

    ``prm`` is a loaded PRM (``prm_backends.load_prm``), or None for strategies without one
    (the public ``tts_eval.search`` also loads a PRM name or YAML path).
    ``stop`` holds extra strings that end a whole solution. Problem i's sampling is seeded by
    ``seed`` and its prompt alone, so its result does not depend on the other problems (up to the
    PRM's float rounding, which can vary by 1e-7 with what a score is batched with and so reorder
    exactly tied beams; a PRM ``batch_size`` of 1 removes that).
    ``table`` (compute_optimal only) is a policy table: a name in
    ``yaml_configs/compute_optimal/``, a YAML path or a loaded table; ``task`` names the task
    of all problems, or of each one, for the table's lookup.

    ``voting`` and ``aggregation`` default as ``tts_eval.voting.resolve_vote_settings`` says: a
    strategy that uses a PRM votes ``prm_vote`` and aggregates as the PRM's spec recommends
    (else ``min``); majority and CoT vote by majority. ``progress`` (a bar on stderr) defaults
    to on when stderr is a terminal. ``pf_temperature`` (default 1)
    and ``resampling`` (default systematic) set particle_filtering's weights and draws.

    ``max_problems`` bounds memory at any problem count: problems are searched in waves of at
    most that many (each wave in lock-step), and only finished results are kept between
    waves. Since each problem's sampling depends on its own seed and prompt only, the results
    equal those of one lock-step call over all problems.
    """
    if max_problems is not None and max_problems < 1:
        raise ValueError(f"max_problems must be at least 1 (or None: all problems together), got {max_problems}")
    if isinstance(prm, (str, PathLike)):
        raise TypeError(
            f"prm={prm!r}: the engine takes a loaded PRM; pass prm_backends.load_prm({str(prm)!r}), or call tts_eval.search"
        )
    voting, aggregation = checked_vote_settings(
        strategy,
        n=n,
        beam_size=beam_size,
        voting=voting,
        aggregation=aggregation,
        recommended=recommended_aggregation(prm),
        has_prm=prm is not None,
        pf_temperature=pf_temperature,
        resampling=resampling,
    )
    if progress is None:
        progress = sys.stderr.isatty()
    spec = STRATEGIES[strategy]
    # Only the particle options given; the others keep SearchSettings' defaults.
    particle_options: dict[str, Any] = {
        k: v for k, v in (("pf_temperature", pf_temperature), ("resampling", resampling)) if v is not None
    }
    settings = SearchSettings(
        n=n,
        beam_size=beam_size,
        temperature=(0.0 if spec.greedy else DEFAULT_TEMPERATURE) if temperature is None else temperature,
        top_p=top_p,
        max_tokens=DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens,
        max_step_tokens=max_step_tokens,
        max_steps=max_steps,
        stop=tuple(stop or ()),
        **particle_options,
    )
    base_seed = random.randrange(2**62) if seed is None else seed
    tasks = _tasks_per_problem(task, len(problems))
    if spec.bind is None:
        if table is not None:
            raise ValueError(
                f"table= is only used by strategy={_names(lambda s: 'table' in s.options)}, not strategy={strategy}"
            )
        builders = dict.fromkeys(tasks, spec.make_units)
    else:
        builders = {
            t: spec.bind(policy=policy, prm=prm, table=table, task=t, settings=settings) for t in dict.fromkeys(tasks)
        }
    engine = _Engine(policy, prm, settings)
    wave = len(problems) if max_problems is None else max_problems
    results: list[SearchResult] = []
    with tqdm(total=len(problems), desc=f"{strategy} n={n}", unit="problem", disable=not progress) as bar:
        for start in range(0, len(problems), max(wave, 1)):
            part = range(start, min(start + wave, len(problems)))
            units = [
                builders[tasks[i]](problems[i], settings, derive_seed(base_seed, problems[i].prompt)) for i in part
            ]
            meters = [_Meter() for _ in part]
            finished = 0
            while True:
                active = [(i, u) for i, us in enumerate(units) for u in us if not u.done]
                if not active:
                    break
                engine.round(active, meters)
                now_finished = sum(all(u.done for u in us) for us in units)
                bar.update(now_finished - finished)
                finished = now_finished
            for us, meter in zip(units, meters):
                candidates = [t for u in us for t in u.results]
                chosen = us[0].choose(candidates, voting, aggregation)
                usage = meter.usage(policy.num_parameters, prm.num_parameters if prm is not None else 0)
                results.append(SearchResult(candidates[chosen].answer, candidates[chosen], candidates, usage))
    return results


def _tasks_per_problem(task: str | Sequence[str | None] | None, count: int) -> list[str | None]:
    if task is None or isinstance(task, str):
        return [task] * count
    tasks = list(task)
    if len(tasks) != count:
        raise ValueError(f"task= gives {len(tasks)} task names for {count} problems; give one name, or one per problem")
    return tasks


@dataclass
class _Meter:
    """Compute spent on one problem so far."""

    policy_input_tokens: int = 0
    policy_output_tokens: int = 0
    prm_tokens: int = 0  # computed by the PRM
    prm_scored_tokens: int = 0  # of the inputs it scored, reused prefixes included
    seconds: float = 0.0

    def usage(self, policy_params: int, prm_params: int) -> Usage:
        flops = TokenCounts(self.policy_input_tokens, self.policy_output_tokens, self.prm_tokens).flops(
            policy_params, prm_params
        )
        return Usage(
            self.policy_input_tokens,
            self.policy_output_tokens,
            self.prm_tokens,
            flops,
            self.seconds,
            self.prm_scored_tokens,
        )


class _Engine:
    def __init__(self, policy: Policy, prm: ProcessRewardModel | None, settings: SearchSettings) -> None:
        if prm is not None and not callable(getattr(prm, "score_continuations", None)):
            raise TypeError(
                f"PRM {getattr(prm, 'name', prm)!r} has no score_continuations(items): implement the "
                "ProcessRewardModel protocol of tts_eval.protocols (score_batch, score, score_continuations, count_tokens)"
            )
        self.policy = policy
        self.prm = prm
        self.settings = settings

    def round(self, active: list[tuple[int, SearchUnit]], meters: list[_Meter]) -> None:
        requests = [(i, unit, e) for i, unit in active for e in unit.expansions()]
        children = self._sample(requests, meters)
        self._score(requests, children, meters)
        per_unit: dict[int, list[list[Trajectory]]] = defaultdict(list)
        for (_, unit, _), kids in zip(requests, children):
            per_unit[id(unit)].append(kids)
        for _, unit in active:
            unit.receive(per_unit[id(unit)])

    def _sample(self, requests, meters: list[_Meter]) -> list[list[Trajectory]]:
        """Children of every request: one policy call per request shape."""
        s = self.settings
        shapes: dict[tuple, list[int]] = defaultdict(list)
        for k, (_, _, e) in enumerate(requests):
            shapes[(e.n, e.max_tokens, e.stop)].append(k)
        children: list[list[Trajectory]] = [[] for _ in requests]
        for (n, max_tokens, stop), ks in shapes.items():
            expansions: list[Expansion] = [requests[k][2] for k in ks]
            prompts = [requests[k][1].problem.prompt + e.parent.text for k, e in zip(ks, expansions)]
            start = time.perf_counter()
            outputs = self.policy.generate(
                prompts,
                n=n,
                temperature=s.temperature,
                top_p=s.top_p,
                max_tokens=max_tokens,
                stop=list(stop),
                seed=[e.seed for e in expansions],
            )
            elapsed = time.perf_counter() - start
            tokens = []
            for k, e, completions in zip(ks, expansions, outputs):
                if len(completions) != n:
                    raise RuntimeError(f"policy {self.policy.name} returned {len(completions)} completions for n={n}")
                meter = meters[requests[k][0]]
                used_in = completions[0].prompt_tokens
                used_out = sum(c.num_tokens for c in completions)
                meter.policy_input_tokens += used_in
                meter.policy_output_tokens += used_out
                tokens.append(used_in + used_out)
                seen: set[str] = set()
                for c in completions:
                    if e.dedupe and c.text in seen:
                        continue
                    seen.add(c.text)
                    children[k].append(extend(e.parent, c, s.stop))
            _share_time(elapsed, [requests[k][0] for k in ks], tokens, meters)
        return children

    def _score(self, requests, children: list[list[Trajectory]], meters: list[_Meter]) -> None:
        """Step scores for every child with steps, in one PRM call. A child inherits its
        parent's scores: the PRM computes only its new steps."""
        if self.prm is None:
            return
        owners, targets, items = [], [], []
        for (i, unit, e), kids in zip(requests, children):
            if not e.scored:
                continue
            parent = e.parent
            known = parent.step_scores if len(parent.step_scores) == len(parent.steps) else []
            for child in kids:
                if child.steps:
                    owners.append(i)
                    targets.append(child)
                    items.append((unit.problem.question, child.steps, list(known)))
        if not items:
            return
        start = time.perf_counter()
        scored = self.prm.score_continuations(items)
        elapsed = time.perf_counter() - start
        if len(scored) != len(items):
            raise RuntimeError(f"PRM {self.prm.name} returned {len(scored)} score lists for {len(items)} solutions")
        for child, result in zip(targets, scored):
            if len(result.scores) != len(child.steps):
                raise RuntimeError(
                    f"PRM {self.prm.name} returned {len(result.scores)} scores for a solution of {len(child.steps)} steps"
                )
            child.step_scores = list(result.scores)
        for i, result in zip(owners, scored):
            meters[i].prm_tokens += result.computed_tokens
            meters[i].prm_scored_tokens += result.input_tokens
        _share_time(elapsed, owners, [r.computed_tokens for r in scored], meters)


def _share_time(elapsed: float, owners: list[int], tokens: list[int], meters: list[_Meter]) -> None:
    """Split one batched call's wall time over the problems in it, by their share of tokens."""
    total = sum(tokens)
    for i, count in zip(owners, tokens):
        meters[i].seconds += elapsed * (count / total if total else 1 / len(owners))

"""The strategy registry: packages ask a strategy's traits instead of naming it, and a new
strategy registered from its own module runs through ``search`` and is accepted by the
settings, the compute-optimal tables and the leaderboard with no other edit."""

from __future__ import annotations

import ast
import importlib
import sys
import textwrap
from pathlib import Path

import pytest

from tts_eval.strategies import STRATEGIES, Strategy

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("tts_eval", "prm_backends", "leaderboard")
# Modules outside tts_eval/strategies/ allowed to hold a string equal to a strategy's name
# (at most 4), each for a meaning other than the strategy:
ALLOWED = {
    "tts_eval/voting.py": "the voting method 'majority', which shares the majority strategy's name",
    "tts_eval/compute_optimal/table.py": "the shipped tables' folder, yaml_configs/compute_optimal",
}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def strategy_literals() -> dict[str, list[tuple[int, str]]]:
    """Module -> (line, name) of every string constant equal to a registered strategy's name,
    outside tts_eval/strategies/ (docstrings excluded)."""
    names = set(STRATEGIES)
    found: dict[str, list[tuple[int, str]]] = {}
    for package in SCANNED:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative.startswith("tts_eval/strategies/"):
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            docs = _docstrings(tree)
            hits = [
                (node.lineno, node.value)
                for node in ast.walk(tree)
                if isinstance(node, ast.Constant) and node.value in names and id(node) not in docs
            ]
            if hits:
                found[relative] = sorted(hits)
    return found


def test_only_the_registry_names_strategies():
    assert len(ALLOWED) <= 4
    found = strategy_literals()
    assert found, "the scan found nothing at all: it no longer reads the modules"
    unexpected = {module: hits for module, hits in found.items() if module not in ALLOWED}
    assert not unexpected, (
        "these modules name strategies by string; ask tts_eval.strategies (traits, or tts_eval.strategies.names "
        f"for code about one built-in strategy): {unexpected}"
    )


def test_scan_sees_a_literal_and_skips_docstrings(tmp_path, monkeypatch):
    """The scan itself: a strategy name in code is found, the same name in a docstring is not."""
    package = tmp_path / "leaderboard"
    package.mkdir()
    (package / "new.py").write_text(
        '"""Compares with cot."""\n\ndef f(s):\n    """best_of_n."""\n    return s == "dvts"\n'
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert strategy_literals() == {"leaderboard/new.py": [(5, "dvts")]}


# -- a strategy added in its own module ------------------------------------------------------

TOY_MODULE = '''
"""Two rounds of whole solutions: half the budget, then the rest, all of them candidates."""

from dataclasses import dataclass

from tts_eval.seeding import derive_seed
from tts_eval.strategies import Strategy, register
from tts_eval.strategies.base import Expansion, SearchUnit
from tts_eval.types import Trajectory


@dataclass
class HalvesUnit(SearchUnit):
    rounds: int = 0

    def expansions(self):
        s = self.settings
        first = s.n // 2
        n, seed = (first, self.seed) if self.rounds == 0 else (s.n - first, derive_seed(self.seed, "second"))
        return [Expansion(Trajectory(steps=[]), n, s.max_tokens, s.stop, seed, dedupe=False)]

    def receive(self, children):
        (found,) = children
        self.results += found
        self.rounds += 1
        self.done = self.rounds == 2


STRATEGY = register(Strategy(
    name="toy_halves", make_units=lambda problem, settings, seed: [HalvesUnit(problem, settings, seed)],
    needs_prm=True, label="Toy halves", order=50, colour="#000000",
))
'''


@pytest.fixture
def toy_strategy(tmp_path, monkeypatch):
    """Import a module, written to tmp_path, that registers ``toy_halves``; unregister after."""
    from tts_eval.strategies import unregister

    (tmp_path / "toy_halves_strategy.py").write_text(textwrap.dedent(TOY_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("toy_halves_strategy")
    yield module.STRATEGY
    unregister("toy_halves")
    sys.modules.pop("toy_halves_strategy", None)


@pytest.fixture(scope="module")
def toy_models():
    from prm_backends import load_prm
    from tts_eval.policies import load_policy
    from tts_eval.toy import PRM_CONFIG, load_test_problems, package_reference

    policy = load_policy(package_reference("policy-small"), backend="hf")
    prm = load_prm(PRM_CONFIG)
    problems = load_test_problems("development")[:3]
    return policy, prm, problems


@pytest.mark.slow
def test_a_new_strategy_runs_through_search(toy_strategy, toy_models):
    from tts_eval import Problem, search

    policy, prm, toys = toy_models
    problems = [Problem(p.question, policy.format_prompt(p.question)) for p in toys]
    settings = {"n": 4, "seed": 3, "max_tokens": 160}
    results = search(problems, policy, prm, strategy="toy_halves", **settings)
    # Its first round is drawn exactly as Best-of-N draws its first n/2 solutions.
    reference = search(problems, policy, prm, strategy="best_of_n", **{**settings, "n": 2})
    for problem, result, first in zip(problems, results, reference):
        assert len(result.candidates) == 4
        assert [c.text for c in result.candidates[:2]] == [c.text for c in first.candidates]
        assert all(len(c.step_scores) == len(c.steps) for c in result.candidates)  # the PRM scored them
        assert any(result.prediction is c for c in result.candidates)
        prompt_tokens = len(policy.tokenizer(problem.prompt, add_special_tokens=False).input_ids)
        assert result.usage.policy_input_tokens == 2 * prompt_tokens  # two requests, one per round
        assert result.usage.policy_output_tokens == sum(c.num_tokens for c in result.candidates)
    again = search(problems, policy, prm, strategy="toy_halves", **settings)
    assert [[c.text for c in r.candidates] for r in again] == [[c.text for c in r.candidates] for r in results]


def test_a_new_strategy_is_accepted_through_its_traits(toy_strategy):
    from leaderboard.formatting import strategy_label
    from leaderboard.plots import strategy_colour
    from leaderboard.rows import Setup
    from tts_eval.compute_optimal.table import Choice, choice_strategies
    from tts_eval.lm_eval.settings import ModelArgsError, parse_model_args
    from tts_eval.search import validate_settings
    from tts_eval.strategies import table_order
    from tts_eval.toy import PRM_CONFIG, package_reference

    policy = package_reference("policy-small")
    args = parse_model_args({"policy": policy, "strategy": "toy_halves", "prm": PRM_CONFIG, "n": 4})
    assert args.search_kwargs()["strategy"] == "toy_halves"
    assert args.resolved()["voting"] == "prm_vote" and args.resolved_temperature() == 0.7
    with pytest.raises(ModelArgsError, match="strategy=toy_halves needs a PRM"):
        parse_model_args({"policy": policy, "strategy": "toy_halves"})
    with pytest.raises(ValueError, match="only apply to strategy=particle_filtering, not strategy=toy_halves"):
        validate_settings(
            "toy_halves", n=4, beam_size=4, aggregation="min", voting="prm_vote", has_prm=True, resampling="multinomial"
        )

    assert list(STRATEGIES)[-1] == "toy_halves"  # order 50: after the built-ins
    assert table_order("toy_halves") > table_order("compute_optimal")
    assert strategy_label(Setup("p", "prm", "toy_halves", 4, "prm_vote", "min")) == "Toy halves"
    assert strategy_colour("toy_halves") == "#000000"
    assert choice_strategies()[-1] == "toy_halves"
    assert Choice(strategy="toy_halves").strategy == "toy_halves"


def test_unknown_and_duplicate_strategies_are_refused():
    from pydantic import ValidationError

    from tts_eval.compute_optimal.table import Choice
    from tts_eval.strategies import get_strategy, register

    with pytest.raises(ValueError, match="unknown strategy 'beam'; choose one of cot, majority, best_of_n"):
        get_strategy("beam")
    with pytest.raises(ValueError, match="a strategy named 'dvts' is already registered"):
        register(Strategy(name="dvts", make_units=lambda *a: [], needs_prm=True, label="x", order=9))
    # The tables' message lists the choosable strategies as pydantic words a Literal's.
    with pytest.raises(
        ValidationError, match="Input should be 'majority', 'best_of_n', 'beam_search', 'dvts' or 'particle_filtering'"
    ):
        Choice(strategy="cot")

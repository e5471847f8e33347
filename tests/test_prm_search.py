"""Best-of-N, beam search and DVTS through ``tts_eval.search`` with a tiny PRM of every family,
given by YAML path as users do: each candidate's step scores equal a fresh full scoring of its
steps, although children inherit their parents' scores and the PRM continues from kept
prefixes (its cache capped small enough to evict)."""

from __future__ import annotations

import pytest
import yaml
from prm_fixtures import FAMILIES, PAPER_NAMES, load_tiny_prm, tiny_prm_dir
from tiny_models import build_causal_lm, char_tokenizer, corpus_from_data

from prm_backends import prm_config_dir
from tts_eval import Problem, load_policy, search
from tts_eval.scoring import aggregate

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def policy(tmp_path_factory, data_dir):
    """A random Llama policy whose raised newline logit makes it write several steps."""
    tokenizer = char_tokenizer(corpus_from_data(data_dir))
    path = build_causal_lm(
        tmp_path_factory.mktemp("prm-search-policy"), tokenizer, arch="llama", token_logits={"\n": 2.0}, seed=1
    )
    return load_policy(str(path), backend="hf")


def tiny_spec_file(family: str, tmp_path, **fields) -> str:
    """The family's paper spec pointed at its tiny checkpoint, written as a user's YAML file."""
    spec = yaml.safe_load((prm_config_dir() / f"{PAPER_NAMES[family]}.yaml").read_text(encoding="utf-8"))
    spec.update({"model": str(tiny_prm_dir(family)), "device": "cpu", "dtype": "float32", "batch_size": 3, **fields})
    path = tmp_path / f"tiny-{family}.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(("batch_size", "padding_side"), [(1, "right"), (7, "left")])
@pytest.mark.parametrize("family", FAMILIES)
def test_every_strategy_scores_with_every_family(family, batch_size, padding_side, policy, math500_rows, tmp_path):
    # About one prefix fits in the cache: most kept beams are evicted before they are extended.
    prm_path = tiny_spec_file(
        family, tmp_path, batch_size=batch_size, padding_side=padding_side, runtime_options={"prefix_cache_tokens": 300}
    )
    reference = load_tiny_prm(family, runtime_options={"prefix_cache_tokens": 0})
    problems = [Problem(r["problem"], policy.format_prompt(r["problem"])) for r in math500_rows(2)]
    max_steps = 0
    for strategy in ("best_of_n", "beam_search", "dvts"):
        results = search(
            problems,
            policy,
            prm_path,
            strategy=strategy,
            n=4,
            beam_size=2,
            aggregation="min",
            voting="prm_max",
            seed=0,
            max_tokens=64,
            max_step_tokens=24,
        )
        for problem, result in zip(problems, results):
            assert len(result.candidates) == (4 if strategy == "best_of_n" else 2)
            for c in result.candidates:
                assert c.step_scores == pytest.approx(reference.score(problem.question, c.steps), abs=1e-5)
                max_steps = max(max_steps, len(c.steps))
            best = max(aggregate(c.step_scores, "min") for c in result.candidates)
            assert aggregate(result.prediction.step_scores, "min") == best
            assert 0 < result.usage.prm_tokens <= result.usage.prm_scored_tokens
            if strategy == "best_of_n":  # each sample is scored once, as a whole
                items = [(problem.question, c.steps) for c in result.candidates]
                assert result.usage.prm_scored_tokens == sum(reference.count_tokens(items))
    assert max_steps >= 2

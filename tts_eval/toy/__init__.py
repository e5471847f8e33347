"""The offline toy world: chained arithmetic problems in the MATH format, two tiny trained
Qwen2 policies of different sizes and a tiny trained token-classifier PRM, shipped with the
package so that test-time scaling can be run and measured without any download.

>>> from tts_eval.toy import model_dir, load_test_problems, package_reference
>>> policy_dir = model_dir("policy-small")     # a save_pretrained folder
>>> package_reference("policy-small")          # the same folder for load_policy / --model_args
'pkg://tts_eval.toy/models/policy-small'
>>> problems = load_test_problems()             # the fixed test split (question, solution, answer, difficulty)
>>> held_out = load_test_problems("heldout")     # its second half, for final reports only
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

PACKAGE_DIR = Path(__file__).resolve().parent
MODELS = ("policy-small", "policy-large", "prm")
# The same PRM recipe trained for fewer steps (tts-eval toy train-prm): PRMs of lower quality,
# to measure test-time scaling against PRM quality (docs/toy-world.md).
WEAKER_PRMS = ("prm-1000", "prm-500", "prm-200")
TEST_FILE = PACKAGE_DIR / "data" / "test.jsonl"
# The toy ProcessBench: the policies' own solutions to development problems, steps labelled
# exactly (written by tts_eval.toy.processbench; the processbench_toy task reads it).
PROCESSBENCH_FILE = PACKAGE_DIR / "data" / "processbench.jsonl"
PRM_CONFIG = "toy-prm"  # load_prm name of the shipped PRM (yaml_configs/prm/toy-prm.yaml)
# The one place the test split is halved. The development half (problems 0-349, 50 per
# difficulty) is what bench/toy.py, the docs' tuning tables and every choice of model, PRM
# reading and setting were measured on; the held-out half (350-699, also 50 per difficulty)
# is read only by final reports: `tts-eval demo`, the arith_tts_heldout task, bench/toy_heldout.py.
SPLITS: dict[str, range] = {"all": range(0, 700), "development": range(0, 350), "heldout": range(350, 700)}
Split = Literal["all", "development", "heldout"]
DEVELOPMENT_PROBLEMS = len(SPLITS["development"])  # the toy ProcessBench is drawn from these only


def model_dir(name: str) -> Path:
    """The folder of a shipped toy model: ``policy-small``, ``policy-large``, ``prm`` (or a
    weaker PRM, ``prm-1000``, ``prm-500``, ``prm-200``)."""
    if name not in (*MODELS, *WEAKER_PRMS):
        raise ValueError(f"unknown toy model {name!r}; choose one of {', '.join((*MODELS, *WEAKER_PRMS))}")
    path = PACKAGE_DIR / "models" / name
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} holds no model; rebuild the toy world with `tts-eval toy train --out DIR`")
    return path


def package_reference(name: str) -> str:
    """``pkg://tts_eval.toy/models/NAME``: how model arguments and YAML files name a shipped
    toy model wherever the package is installed (``load_policy`` and ``load_prm`` read it)."""
    if name not in (*MODELS, *WEAKER_PRMS):
        raise ValueError(f"unknown toy model {name!r}; choose one of {', '.join((*MODELS, *WEAKER_PRMS))}")
    return f"pkg://{__name__}/models/{name}"


def load_test_problems(split: Split = "all", path: Path = TEST_FILE):
    """The test split (or its ``development`` / ``heldout`` half, see :data:`SPLITS`) as
    :class:`~tts_eval.toy.problems.ToyProblem` objects, in file order."""
    from tts_eval.toy.problems import read_jsonl

    if split not in SPLITS:
        raise ValueError(f"unknown toy split {split!r}; choose one of {', '.join(SPLITS)}")
    problems = read_jsonl(Path(path))
    if split != "all" and len(problems) != len(SPLITS["all"]):
        raise ValueError(
            f"{path}: {len(problems)} problems, but the {split} half is defined on the "
            f"{len(SPLITS['all'])} of the shipped test split"
        )
    return [problems[i] for i in SPLITS[split]] if split != "all" else problems

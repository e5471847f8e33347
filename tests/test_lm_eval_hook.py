"""lm-eval finds the ``tts`` model and tts-eval's tasks with no flag: the ``.pth`` hook.

Each check runs in a fresh interpreter, as users' ``lm_eval`` processes start.
"""

from __future__ import annotations

import email
import json
import re
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def run_python(code: str, *args: str, flags: tuple[str, ...] = ()) -> dict:
    """Run ``code`` in a new interpreter; it prints one JSON object as its last line."""
    proc = subprocess.run(
        [sys.executable, *flags, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO.parent,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_interpreter_start_installs_only_the_tiny_hook():
    state = run_python(
        """
        import json, sys
        print(json.dumps({m: m in sys.modules for m in ("tts_eval_lm_eval_hook", "lm_eval", "tts_eval", "torch")}))
        """
    )
    assert state == {"tts_eval_lm_eval_hook": True, "lm_eval": False, "tts_eval": False, "torch": False}


def test_lm_eval_models_gain_tts_and_keep_their_own():
    state = run_python(
        """
        import json
        from lm_eval.api.registry import get_model, model_registry
        from lm_eval.models import MODEL_MAPPING
        lazy = model_registry._objs["tts"]
        lazy_prm = model_registry._objs["prm"]
        tts = get_model("tts")
        prm = get_model("prm")
        print(json.dumps({
            "lazy": lazy,
            "lazy_prm": lazy_prm,
            "tts": f"{tts.__module__}:{tts.__name__}",
            "prm": f"{prm.__module__}:{prm.__name__}",
            "missing_builtin": sorted(set(MODEL_MAPPING) - set(model_registry)),
            "dummy": get_model("dummy").__name__,
        }))
        """
    )
    assert state == {
        "lazy": "tts_eval.lm_eval.model:TTSLM",  # registered without importing the model module
        "lazy_prm": "tts_eval.lm_eval.prm_model:PRMLM",
        "tts": "tts_eval.lm_eval.model:TTSLM",
        "prm": "tts_eval.lm_eval.prm_model:PRMLM",
        "missing_builtin": [],
        "dummy": "DummyLM",
    }


def test_task_managers_index_our_tasks_once_and_keep_include_paths(tmp_path):
    extra = tmp_path / "my_tasks"
    extra.mkdir()
    (extra / "mine.yaml").write_text("task: my_task\ndataset_path: json\noutput_type: generate_until\n")
    state = run_python(
        """
        import json, logging, sys
        from lm_eval.tasks import TaskManager
        from tts_eval.resources import resource_dir
        warnings = []
        logging.getLogger("lm_eval.tasks._index").addHandler(type("H", (logging.Handler,), {"emit": lambda self, r: warnings.append(r.getMessage())})())
        ours = str(resource_dir("tasks"))
        plain = TaskManager(include_defaults=False)
        mixed = TaskManager(include_defaults=False, include_path=[ours, sys.argv[1]])
        print(json.dumps({
            "plain": plain.all_tasks,
            "mixed": mixed.all_tasks,
            "include_path": mixed.include_path == [ours, sys.argv[1]],
            "warnings": warnings,
        }))
        """,
        str(extra),
    )
    ours = ["aime24_tts", "arith_tts", "arith_tts_dev", "arith_tts_heldout", "math500_tts"]
    ours += ["processbench", *(f"processbench_{s}" for s in ("gsm8k", "math", "olympiadbench", "omnimath", "toy"))]
    assert state["plain"] == sorted([*ours, "tts_math", "tts_toy"])
    assert state["mixed"] == sorted([*ours, "my_task", "tts_math", "tts_toy"])
    assert state["include_path"] is True
    assert state["warnings"] == []  # our folder was not indexed twice


def test_hook_coexists_with_another_import_hook():
    """Another finder that also wraps ``lm_eval.models`` sits in front of ours: both run."""
    state = run_python(
        """
        import json, sys
        from importlib.abc import MetaPathFinder
        seen = []

        # A post-import hook of the usual shape: asks every other finder, guards against
        # being asked again meanwhile, wraps the loader's exec_module.
        class Other(MetaPathFinder):
            busy = False

            def find_spec(self, name, path=None, target=None):
                if name != "lm_eval.models" or self.busy:
                    return None
                self.busy = True
                try:
                    for finder in sys.meta_path:
                        if finder is self or not hasattr(finder, "find_spec"):
                            continue
                        spec = finder.find_spec(name, path, target)
                        if spec is not None:
                            original = spec.loader.exec_module
                            def exec_module(module, original=original):
                                original(module)
                                seen.append("other")
                            spec.loader.exec_module = exec_module
                            return spec
                    return None
                finally:
                    self.busy = False

        sys.meta_path.insert(0, Other())
        from lm_eval.api.registry import get_model
        import lm_eval.models
        print(json.dumps({"seen": seen, "tts": get_model("tts").__name__, "hf_registered": "hf" in lm_eval.models.MODEL_MAPPING}))
        """
    )
    assert state == {"seen": ["other"], "tts": "TTSLM", "hf_registered": True}


def test_output_folder_is_named_after_the_policy():
    state = run_python(
        """
        import json
        from lm_eval.loggers.evaluation_tracker import GeneralConfigTracker as G
        print(json.dumps([
            G._get_model_name({"policy": "Qwen/Qwen2.5-1.5B-Instruct", "prm_model": "/x"}),
            G._get_model_name("policy=Qwen/Qwen2.5-1.5B-Instruct,prm_model=/x"),
            G._get_model_name({"pretrained": "gpt2"}),
            G._get_model_name("prm=qwen2.5-math-prm-7b,threshold=0.5"),
        ]))
        """
    )
    assert state == ["Qwen/Qwen2.5-1.5B-Instruct", "Qwen/Qwen2.5-1.5B-Instruct", "gpt2", "qwen2.5-math-prm-7b"]


def test_editable_install_has_the_pth_file():
    site_packages = Path(sysconfig.get_paths()["purelib"])
    assert (site_packages / "tts_eval_lm_eval.pth").read_text().strip() == "import tts_eval_lm_eval_hook"


# The name on PyPI ("tts-eval" there is an unrelated project); the command stays tts-eval.
DISTRIBUTION = "tts-eval-harness"


def test_install_lines_name_the_distribution():
    lines = [
        line
        for path in (REPO / "README.md", *sorted((REPO / "docs").glob("*.md")))
        for line in path.read_text(encoding="utf-8").splitlines()
        if "pip install" in line
    ]
    named = re.findall(r"pip install (?:-\S+ )*'?(tts[\w.-]*)", "\n".join(lines))
    assert named and set(named) == {DISTRIBUTION}, named


@pytest.mark.slow
def test_wheel_ships_hook_and_tasks_and_works_from_them(tmp_path):
    """Build the wheel (no network: the venv's hatchling), unpack it, and use it alone: the
    hook module from the wheel registers the model and the wheel's own tasks folder."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob(f"{DISTRIBUTION.replace('-', '_')}-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        assert email.message_from_bytes(archive.read(metadata))["Name"] == DISTRIBUTION
        assert archive.read("tts_eval_lm_eval.pth").decode().strip() == "import tts_eval_lm_eval_hook"
        archive.extractall(tmp_path / "site")
    for name in (
        "tts_eval_lm_eval_hook.py",
        "tts_eval/lm_eval/model.py",
        "tts_eval/_data/tasks/math500_tts/math500_tts.yaml",
        "tts_eval/_data/tasks/aime24_tts/utils.py",
        "tts_eval/_data/tasks/arith_tts/arith_tts.yaml",
        "tts_eval/_data/tasks/arith_tts/arith_tts_heldout.yaml",
        "tts_eval/toy/data/test.jsonl",
        "tts_eval/toy/models/prm/model.safetensors",
        "tts_eval/toy/models/policy-small/model.safetensors",
    ):
        assert name in names
    assert any(n.startswith("tts_eval/_data/yaml_configs/prm/") for n in names)

    # -S: no site processing, so neither the checkout nor its editable install is importable;
    # the unpacked wheel comes first, the venv's packages provide the dependencies.
    site = tmp_path / "site"
    state = run_python(
        """
        import json, sys
        sys.path[:0] = [sys.argv[1], sys.argv[2]]
        import tts_eval_lm_eval_hook
        from lm_eval.api.registry import get_model
        from lm_eval.tasks import TaskManager
        import tts_eval
        from prm_backends import load_spec
        manager = TaskManager(include_defaults=False)
        print(json.dumps({
            "tts_eval": tts_eval.__file__,
            "model": get_model("tts").__module__,
            "task_file": str(manager.task_index["math500_tts"].yaml_path),
            "toy_prm": load_spec("toy-prm").model,
        }))
        """,
        str(site),
        sysconfig.get_paths()["purelib"],
        flags=("-S",),
    )
    assert state["tts_eval"] == str(site / "tts_eval" / "__init__.py")
    assert state["model"] == "tts_eval.lm_eval.model"
    assert state["task_file"] == str(site / "tts_eval" / "_data" / "tasks" / "math500_tts" / "math500_tts.yaml")
    assert state["toy_prm"] == str(site / "tts_eval" / "toy" / "models" / "prm")  # pkg:// resolves inside the wheel

"""What tts-eval adds to lm-eval once lm-eval's modules are imported.

Called by the ``tts_eval_lm_eval_hook`` finder (see that module), each function right after
the lm-eval module it is named after has finished executing; calling one twice is harmless.
Only additions: lm-eval's own models, tasks and output naming stay as they are.
"""

from __future__ import annotations

import functools
import inspect
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

MODEL_NAME = "tts"
MODEL_CLASS = "tts_eval.lm_eval.model:TTSLM"
# The PRM itself as a model, for step-labelled tasks (ProcessBench).
PRM_MODEL_NAME = "prm"
PRM_MODEL_CLASS = "tts_eval.lm_eval.prm_model:PRMLM"

_WRAPPED = "__tts_eval_wrapped__"

# The output path of the newest lm-eval EvaluationTracker (the CLI makes one per run, before
# the model); the ``tts`` model keeps its resume checkpoint next to the results there.
_tracker_output_path: str | None = None


def on_models_imported(module: ModuleType) -> None:
    """Register ``tts`` and ``prm`` as lazy entries: a model module is imported on first use only."""
    from lm_eval.api.registry import model_registry

    for name, target in ((MODEL_NAME, MODEL_CLASS), (PRM_MODEL_NAME, PRM_MODEL_CLASS)):
        if name not in model_registry:
            model_registry.register(name, target=target)
    _report_setting_errors_in_one_line()


def _report_setting_errors_in_one_line() -> None:
    """An uncaught model_args error or unreachable server (from ``lm_eval --model tts``) is
    printed as its message alone, like a command-line error, not as a traceback through
    lm-eval's internals (each message names the field or URL and the fix); every other
    exception keeps the usual report."""
    previous = sys.excepthook
    if getattr(previous, _WRAPPED, False):
        return

    def excepthook(kind, error, traceback) -> None:
        from tts_eval.lm_eval.settings import ModelArgsError
        from tts_eval.serving.http import ServerUnavailableError

        cause = error
        while cause is not None and not isinstance(cause, (ModelArgsError, ServerUnavailableError)):
            cause = cause.__cause__ or cause.__context__
        if cause is None:
            return previous(kind, error, traceback)
        print(f"Error: {cause}", file=sys.stderr, flush=True)

    setattr(excepthook, _WRAPPED, True)
    sys.excepthook = excepthook


def on_task_manager_imported(module: ModuleType) -> None:
    """Make every ``TaskManager`` index tts-eval's tasks after lm-eval's built-in ones and
    before the caller's include paths (which may override them)."""
    from tts_eval.lm_eval.benchmarks import pin_data_dir

    pin_data_dir()  # before lm-eval starts any worker in another folder
    cls = module.TaskManager
    original = cls.__init__
    if getattr(original, _WRAPPED, False):
        return
    signature = inspect.signature(original)

    @functools.wraps(original)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        bound = signature.bind(self, *args, **kwargs)
        given = bound.arguments.get("include_path")
        bound.arguments["include_path"] = with_tts_tasks(given)
        original(*bound.args, **bound.kwargs)
        self.include_path = given  # what the caller passed, as lm-eval reports it

    setattr(__init__, _WRAPPED, True)
    cls.__init__ = __init__


def with_tts_tasks(include_path: str | Path | list | tuple | None) -> list[str | Path]:
    """``include_path`` as a list with tts-eval's tasks folder first (once)."""
    from tts_eval.resources import resource_dir

    paths = (
        []
        if include_path is None
        else list(include_path)
        if isinstance(include_path, (list, tuple))
        else [include_path]
    )
    ours = resource_dir("tasks").resolve()
    if any(Path(p).expanduser().resolve() == ours for p in paths):
        return paths
    return [ours, *paths]


def on_evaluator_imported(module: ModuleType) -> None:
    """Keep secrets out of what the evaluator logs: it logs a model's model_args at INFO."""
    import logging

    from tts_eval.lm_eval.secrets import RedactingFilter

    logger = logging.getLogger(module.__name__)
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())


def on_evaluation_tracker_imported(module: ModuleType) -> None:
    """Name output folders after the policy (the PRM for the ``prm`` model: lm-eval only knows
    ``pretrained=``/``model=`` and would otherwise pick a random name) and remember each
    tracker's output path."""
    config_cls = module.GeneralConfigTracker
    original_name = config_cls._get_model_name
    if not getattr(original_name, _WRAPPED, False):

        @functools.wraps(original_name)
        def _get_model_name(model_args: Any) -> str | None:
            name = _arg_of(model_args, "policy") or _arg_of(model_args, "prm")
            return name if name is not None else original_name(model_args)

        setattr(_get_model_name, _WRAPPED, True)
        config_cls._get_model_name = staticmethod(_get_model_name)

    tracker_cls = module.EvaluationTracker
    original_init = tracker_cls.__init__
    if not getattr(original_init, _WRAPPED, False):

        @functools.wraps(original_init)
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            global _tracker_output_path
            original_init(self, *args, **kwargs)
            _tracker_output_path = self.output_path

        setattr(__init__, _WRAPPED, True)
        tracker_cls.__init__ = __init__
    _stage_and_scrub_output(tracker_cls)


# Output files are written into this hidden folder under the output path, then moved into
# place (samples first, results last), so a run killed while writing leaves no torn or
# unmatched results/samples files, only a hidden folder the next run removes.
_STAGING_PREFIX = ".tts_eval_partial_"


def _stage_and_scrub_output(tracker_cls: type[Any]) -> None:
    """Wrap ``EvaluationTracker``'s two writers: no secret of the model_args reaches a file
    (:mod:`tts_eval.lm_eval.secrets`), and a run's files appear all at once."""
    from tts_eval.lm_eval.secrets import scrub

    save_results, save_samples = tracker_cls.save_results_aggregated, tracker_cls.save_results_samples
    if getattr(save_results, _WRAPPED, False):
        return

    @functools.wraps(save_results)
    def save_results_aggregated(self, results: dict | None = None, samples: dict | None = None) -> None:
        config = self.general_config_tracker  # copied into the results file as it is
        for name, value in list(vars(config).items()):
            setattr(config, name, scrub(value))
        final = self.output_path
        if not final or str(final).endswith(".json"):
            return save_results(self, results=scrub(results), samples=scrub(samples))
        stage = Path(final) / f"{_STAGING_PREFIX}{os.getpid()}"
        shutil.rmtree(stage, ignore_errors=True)
        self.output_path = str(stage)
        try:
            save_results(self, results=scrub(results), samples=scrub(samples))
        finally:
            self.output_path = final
        expected = set((results or {}).get("configs", {})) if samples else set()
        self._tts_staging = (stage, expected)
        if not expected:
            _publish(self)

    @functools.wraps(save_samples)
    def save_results_samples(self, task_name: str, samples: list) -> None:
        staging = getattr(self, "_tts_staging", None)
        if staging is None:
            return save_samples(self, task_name, scrub(samples))
        stage, expected = staging
        final, self.output_path = self.output_path, str(stage)
        try:
            save_samples(self, task_name, scrub(samples))
        finally:
            self.output_path = final
        expected.discard(task_name)
        if not expected:
            _publish(self)

    for wrapper in (save_results_aggregated, save_results_samples):
        setattr(wrapper, _WRAPPED, True)
    tracker_cls.save_results_aggregated = save_results_aggregated
    tracker_cls.save_results_samples = save_results_samples


def _publish(tracker: Any) -> None:
    """Move a run's staged files into the output folder: samples, then the results file."""
    stage, _ = tracker._tts_staging
    tracker._tts_staging = None
    root = Path(tracker.output_path)
    for folder in [p for p in stage.iterdir() if p.is_dir()] if stage.is_dir() else []:
        target = root / folder.name
        target.mkdir(parents=True, exist_ok=True)
        files = sorted(folder.iterdir(), key=lambda f: f.name.startswith("results_"))
        for file in files:
            os.replace(file, target / file.name)
    shutil.rmtree(stage, ignore_errors=True)
    for leftover in root.glob(f"{_STAGING_PREFIX}*"):  # of killed runs
        pid = leftover.name.removeprefix(_STAGING_PREFIX)
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _arg_of(model_args: Any, name: str) -> str | None:
    """The value of ``name`` in model_args (a dict or lm-eval's ``key=value,...`` string)."""
    if isinstance(model_args, dict):
        value = model_args.get(name)
        return None if value is None else str(value)
    if isinstance(model_args, str):
        for part in model_args.split(","):
            key, sep, value = part.partition("=")
            if sep and key.strip() == name:
                return value.strip()
    return None


def tracker_output_path() -> str | None:
    """The output path of the newest lm-eval ``EvaluationTracker`` (None if none was made)."""
    return _tracker_output_path


def register() -> None:
    """Register with lm-eval by hand, for interpreters started without the ``.pth`` hook
    (e.g. ``python -S``): imports lm-eval's model and task modules and applies the above."""
    import lm_eval.evaluator as evaluator
    import lm_eval.loggers.evaluation_tracker as tracker
    import lm_eval.models as models
    import lm_eval.tasks.manager as manager

    on_models_imported(models)
    on_task_manager_imported(manager)
    on_evaluation_tracker_imported(tracker)
    on_evaluator_imported(evaluator)

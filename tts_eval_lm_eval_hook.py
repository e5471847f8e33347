"""Connects tts-eval to lm-evaluation-harness, which has no plugin discovery of its own.

``tts_eval_lm_eval.pth`` imports this module at interpreter start, so it must stay tiny: it
imports neither lm-eval nor tts-eval. It puts a finder at the front of ``sys.meta_path``
that watches four lm-eval modules and, once one of them has finished executing, hands it to
``tts_eval.lm_eval.registration`` (imported only then):

- ``lm_eval.models``: registers the ``tts`` and ``prm`` models next to lm-eval's own (lazily);
- ``lm_eval.tasks.manager``: makes every ``TaskManager`` index tts-eval's tasks folder too;
- ``lm_eval.loggers.evaluation_tracker``: names output folders after the policy and
  remembers the output path, where the ``tts`` model keeps its resume checkpoint;
- ``lm_eval.evaluator``: keeps secrets (``api_key=...``) out of the model_args it logs.

The finder never loads anything itself: it asks the finders behind it for the module's spec
and only wraps the loader, so other import hooks keep working. Set
``TTS_EVAL_DISABLE_LM_EVAL_HOOK=1`` to turn it off.
"""

from __future__ import annotations

import os
import sys
import threading

_TARGETS = {
    "lm_eval.models": "on_models_imported",
    "lm_eval.tasks.manager": "on_task_manager_imported",
    "lm_eval.loggers.evaluation_tracker": "on_evaluation_tracker_imported",
    "lm_eval.evaluator": "on_evaluator_imported",
}


def _after_import(module) -> None:
    # A broken tts-eval install must not take lm-eval down with it: warn and go on.
    try:
        from tts_eval.lm_eval import registration

        getattr(registration, _TARGETS[module.__name__])(module)
    except Exception as error:  # noqa: BLE001
        import warnings

        warnings.warn(
            f"tts-eval could not register with lm-eval ({module.__name__}): {error!r}; "
            "the 'tts' model and tts-eval's tasks are unavailable (reinstall tts-eval)",
            RuntimeWarning,
            stacklevel=2,
        )


class _PostImportLoader:
    """Runs the real loader, then ``_after_import``; everything else goes to the real one."""

    def __init__(self, loader) -> None:
        self._loader = loader

    def create_module(self, spec):
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        # Leave no trace of the wrapper on the module.
        module.__loader__ = self._loader
        if getattr(module, "__spec__", None) is not None:
            module.__spec__.loader = self._loader
        _after_import(module)

    def __getattr__(self, name):
        return getattr(self._loader, name)


class LmEvalPostImportFinder:
    """A ``sys.meta_path`` finder that only wraps the loaders of the watched modules."""

    def __init__(self) -> None:
        # Names being looked up right now: another hook that also asks every finder must not
        # send the lookup back to us in a loop.
        self._resolving = threading.local()

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in _TARGETS:
            return None
        busy = self._resolving.__dict__.setdefault("names", set())
        if fullname in busy:
            return None
        busy.add(fullname)
        try:
            spec = self._spec_from_others(fullname, path, target)
        finally:
            busy.discard(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        if not isinstance(spec.loader, _PostImportLoader):
            spec.loader = _PostImportLoader(spec.loader)
        return spec

    def _spec_from_others(self, fullname, path, target):
        for finder in list(sys.meta_path):
            if finder is self or isinstance(finder, LmEvalPostImportFinder):
                continue
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is None:
                continue
            spec = find_spec(fullname, path, target)
            if spec is not None:
                return spec
        return None

    def invalidate_caches(self) -> None:
        return None


def install() -> None:
    """Put the finder in place (once) and catch up on watched modules already imported."""
    if os.environ.get("TTS_EVAL_DISABLE_LM_EVAL_HOOK", "").strip() not in ("", "0"):
        return
    if not any(isinstance(f, LmEvalPostImportFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, LmEvalPostImportFinder())
    for name in _TARGETS:
        module = sys.modules.get(name)
        if module is not None:
            _after_import(module)


install()

"""The ``tts`` lm-eval model: every generative request is answered by a test-time search.

``generate_until`` takes all of lm-eval's requests at once, turns each into a
:class:`~tts_eval.types.Problem`, and searches them together: one ``tts_eval.search`` call
per distinct generation setting (``until``, ``max_gen_toks``) and chunk of ``chunk_size``
problems. Each finished chunk is appended to the resume checkpoint, so a restarted run skips
what is done. The answer to a request is the chosen candidate's full solution (cut before
the first ``until`` string, as lm-eval expects), carrying the search result for tts-eval's
tasks (:class:`~tts_eval.lm_eval.response.SearchResponse`).

Prompts: when lm-eval's context is just the problem (a 0-shot task whose prompt is the bare
problem, like ``math500_tts``), the policy's own chat template and system prompt are applied
to it; any other context (``--apply_chat_template`` output, few-shot prompts) is used as is.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from tts_eval.lm_eval.checkpoint import CheckpointStore, problem_key
from tts_eval.lm_eval.harness import HarnessModel
from tts_eval.lm_eval.registration import tracker_output_path
from tts_eval.lm_eval.response import SearchResponse
from tts_eval.lm_eval.settings import TTSModelArgs, checkpoint_folder, parse_model_args
from tts_eval.serialization import result_to_dict
from tts_eval.types import Problem, SearchResult

if TYPE_CHECKING:
    from lm_eval.api.instance import Instance

logger = logging.getLogger(__name__)

# Document fields that hold the raw problem, in order of preference (MATH, GSM8K, AIME).
QUESTION_FIELDS = ("problem", "question", "Problem")
# Generation kwargs of lm-eval tasks that the search replaces with its own settings.
SEARCH_CONTROLLED = ("temperature", "do_sample", "top_p", "top_k", "num_beams")


class TTSLM(HarnessModel):
    """lm-eval model ``tts``; construct it with the keyword arguments of
    :class:`~tts_eval.lm_eval.settings.TTSModelArgs`."""

    def __init__(self, **model_args: Any) -> None:
        super().__init__()
        self.args: TTSModelArgs = parse_model_args(model_args)
        self._checkpoint_folder = checkpoint_folder(self.args, tracker_output_path())
        from tts_eval.memory_plan import plan_run
        from tts_eval.policies import load_policy

        # Shares of a device the policy and the PRM both use, decided before either loads.
        prm_spec = None
        if self.args.prm is not None:
            from prm_backends import load_spec

            prm_spec = load_spec(self.args.prm, **self.args.prm_overrides)
        self.memory_plans = plan_run(
            policy=self.args.policy,
            backend=self.args.backend,
            policy_options=self.args.policy_options,
            prm_spec=prm_spec,
            max_tokens=self.args.resolved_max_tokens(),
        )
        policy_options, prm_overrides = dict(self.args.policy_options), dict(self.args.prm_overrides)
        for plan in self.memory_plans:
            policy_options.update(plan.options("policy"))
            if plan.options("prm"):
                assert prm_spec is not None  # a plan gives the PRM options only when there is a PRM
                prm_overrides["runtime_options"] = {**prm_spec.runtime_options, **plan.options("prm")}
        self.policy = load_policy(self.args.policy, backend=self.args.backend, **policy_options)
        self.prm = None
        if self.args.prm is not None:
            from prm_backends import load_prm

            self.prm = load_prm(self.args.prm, **prm_overrides)
        self._warned_ignored: set[str] = set()

    # -- construction from lm-eval's CLI -------------------------------------------------

    @staticmethod
    def with_harness_options(model_args: dict[str, Any], harness: dict[str, Any]) -> dict[str, Any]:
        """The shared ``--device`` rule, for a policy backend that takes a device (``openai``
        does not: its device setting goes to the PRM)."""
        merged = HarnessModel.with_harness_options(model_args, harness)
        if merged is model_args:
            return model_args
        try:
            from tts_eval.policies import backend_class, backend_options, resolve_backend

            options = backend_options(backend_class(resolve_backend(model_args.get("backend", "auto"))))
        except (ImportError, ValueError):
            return model_args  # parse_model_args reports the backend problem
        return merged if options is None or "device" in options else model_args

    # -- what lm-eval records -------------------------------------------------------------

    def get_model_info(self) -> dict[str, Any]:
        """Added to the ``config`` of the results JSON."""
        return {
            "model_num_parameters": self.policy.num_parameters,
            "prm_num_parameters": None if self.prm is None else self.prm.num_parameters,
            "tts": {
                **self.args.resolved(),
                "policy_name": self.policy.name,
                "prm_name": None if self.prm is None else self.prm.name,
                "checkpoint_folder": None if self._checkpoint_folder is None else str(self._checkpoint_folder),
                "memory_plan": [plan.as_dict() for plan in self.memory_plans],
            },
        }

    @property
    def tokenizer_name(self) -> str:
        return self.policy.name.replace("/", "__")

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        tokenizer = getattr(self.policy, "tokenizer", None)
        return getattr(tokenizer, "chat_template", None) or ""

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """lm-eval's messages in the policy's chat template. Without a system message the
        policy's own system prompt (``system_prompt=``) is used, so a 0-shot problem gets
        exactly the prompt it gets without ``--apply_chat_template``."""
        tokenizer = getattr(self.policy, "tokenizer", None)
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise ValueError(
                f"--apply_chat_template: policy {self.policy.name!r} has no chat template; "
                "run without --apply_chat_template (tts-eval's tasks then apply the policy's own prompt format)"
            )
        messages = list(chat_history)
        system_prompt = getattr(self.policy, "system_prompt", None)
        if system_prompt and not any(m.get("role") == "system" for m in messages):
            messages.insert(0, {"role": "system", "content": system_prompt})
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)

    # -- requests ------------------------------------------------------------------------

    def loglikelihood(self, requests: list[Instance], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        raise NotImplementedError(_GENERATIVE_ONLY)

    def loglikelihood_rolling(self, requests: list[Instance], disable_tqdm: bool = False) -> list[float]:
        raise NotImplementedError(_GENERATIVE_ONLY)

    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        jobs = [self._job(request) for request in requests]
        results = self._search_all(jobs, disable_tqdm)
        responses: list[str] = []
        for request, job in zip(requests, jobs):
            result = results[job.key]
            response = SearchResponse(_cut_at_stop(result.prediction.text, job.until), result_to_dict(result))
            self.cache_hook.add_partial("generate_until", request.args, response)
            responses.append(response)
        return responses

    def problem_for(self, request: Instance) -> Problem:
        """The problem a request asks for: the PRM's question from the document (else the
        context); the policy's prompt is the context, in the policy's chat template when the
        context is just that question."""
        context = request.args[0]
        question = doc_question(request.doc)
        if question is not None and context.strip() == question.strip():
            return Problem(question=question, prompt=self.policy.format_prompt(question))
        return Problem(question=context if question is None else question, prompt=context)

    def _job(self, request: Instance) -> _Job:
        gen_kwargs = dict(request.args[1] or {})
        self._note_ignored(gen_kwargs)
        until = gen_kwargs.get("until") or []
        until = [until] if isinstance(until, str) else list(until)
        max_tokens = self.args.resolved_max_tokens()
        if gen_kwargs.get("max_gen_toks") is not None:
            max_tokens = min(max_tokens, int(gen_kwargs["max_gen_toks"]))
        problem = self.problem_for(request)
        key = problem_key(request.task_name, problem.question, problem.prompt, until, max_tokens)
        return _Job(
            key=key, problem=problem, until=until, max_tokens=max_tokens, task=request.task_name, doc_id=request.doc_id
        )

    def _note_ignored(self, gen_kwargs: dict[str, Any]) -> None:
        ignored = sorted(k for k in SEARCH_CONTROLLED if k in gen_kwargs and k not in self._warned_ignored)
        if ignored:
            self._warned_ignored.update(ignored)
            logger.info(
                "tts: generation kwargs %s are ignored: the search sets them (model_args temperature=, top_p=)", ignored
            )

    def _search_all(self, jobs: list[_Job], disable_tqdm: bool) -> dict[str, SearchResult]:
        """The search result of every distinct job, from the checkpoint or a new search."""
        store = None
        if self._checkpoint_folder is not None:
            store = CheckpointStore(self._checkpoint_folder, self.args.result_settings())
        distinct: dict[str, _Job] = {}
        for job in jobs:
            distinct.setdefault(job.key, job)
        groups: dict[tuple[tuple[str, ...], int], list[_Job]] = {}
        for job in distinct.values():
            groups.setdefault((tuple(job.until), job.max_tokens), []).append(job)
        if store is not None and len(store):
            done = sum(key in store for key in distinct)
            # Printed, not logged: lm-eval's log level may hide it, and the user must see it.
            print(
                f"resuming: {done} of {len(distinct)} problems done (checkpoint {store.path})",
                file=sys.stderr,
                flush=True,
            )

        results: dict[str, SearchResult] = {}
        bar = tqdm(
            total=len(distinct), desc=f"tts {self.args.strategy} n={self.args.n}", unit="problem", disable=disable_tqdm
        )
        size = self.args.chunk_size
        for (until, max_tokens), group in groups.items():
            # Chunks are cut from the whole group, done or not, so a resumed run batches the
            # remaining problems exactly as the uninterrupted run did.
            for start in range(0, len(group), size):
                chunk = group[start : start + size]
                results.update(self._search_chunk(chunk, list(until), max_tokens, store))
                bar.update(len(chunk))
        bar.close()
        return results

    def _search_chunk(
        self, chunk: list[_Job], until: list[str], max_tokens: int, store: CheckpointStore | None
    ) -> dict[str, SearchResult]:
        """Results of one chunk: the checkpointed ones read back, the rest searched together
        and then checkpointed."""
        from tts_eval.search import search

        results = {job.key: store.get(job.key) for job in chunk if store is not None and job.key in store}
        todo = [job for job in chunk if job.key not in results]
        if not todo:
            return results
        found = search(
            [job.problem for job in todo],
            self.policy,
            self.prm,
            stop=until,
            max_tokens=max_tokens,
            task=[job.task for job in todo],
            **self.args.search_kwargs(),
        )
        if store is not None:
            store.add_all(
                (job.key, result, {"task": job.task, "doc_id": job.doc_id}) for job, result in zip(todo, found)
            )
        results.update((job.key, result) for job, result in zip(todo, found))
        return results


class _Job:
    """One distinct problem of a ``generate_until`` call."""

    __slots__ = ("doc_id", "key", "max_tokens", "problem", "task", "until")

    def __init__(
        self, *, key: str, problem: Problem, until: list[str], max_tokens: int, task: str | None, doc_id: int | None
    ):
        self.key = key
        self.problem = problem
        self.until = until
        self.max_tokens = max_tokens
        self.task = task
        self.doc_id = doc_id


_GENERATIVE_ONLY = (
    "the tts model only supports generative tasks (output_type: generate_until), such as "
    "math500_tts, aime24_tts, gsm8k or minerva_math500; loglikelihood and multiple-choice tasks "
    "need a model that scores text, e.g. --model hf"
)


def doc_question(doc: Any) -> str | None:
    """The raw problem in a task's document (its first non-empty QUESTION_FIELDS field)."""
    if isinstance(doc, dict):
        for field in QUESTION_FIELDS:
            value = doc.get(field)
            if isinstance(value, str) and value.strip():
                return value
    return None


def _cut_at_stop(text: str, until: Sequence[str]) -> str:
    """``text`` up to the earliest ``until`` string (lm-eval's responses exclude it)."""
    cut = len(text)
    for stop in until:
        if stop:
            at = text.find(stop)
            if at != -1:
                cut = min(cut, at)
    return text[:cut]

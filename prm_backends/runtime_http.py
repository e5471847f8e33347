"""The HTTP runtime: scores solutions on vLLM servers (``vllm serve``), possibly several.

What is asked follows the family's head kind (:mod:`prm_backends.families`):

* ``classes``, the token classifier: the server's ``/pooling`` endpoint (``task: token_classify``, raw
  logits). A server with per-token pooling (``--pooler-config '{"tok_pooling_type": "ALL"}'``)
  returns one row per input token and the score positions are read from them; one with step
  pooling on the tag (vLLM's default for ``Qwen2ForProcessRewardModel``, or
  ``--pooler-config '{"step_tag_id": ID}'``) returns one row per tag token, in order.
* ``next_token``, step-tag and chat-turn LMs: ``/v1/completions`` with one one-token prompt per step (the
  input cut after the step's score position, as token ids) and ``logprob_token_ids`` set to
  the good and bad tokens, whose log-probabilities the read-out compares.
* generative judges: the same request on each step's own prompt; a thinking judge first
  writes greedily through ``/v1/completions`` (its tokens read back as token ids).
* ``value``, the value head: no vLLM server computes it; the spec refuses the runtime and
  names ``runtime: hf``.

Inputs are built here with the PRM's own tokenizer and sent as token ids, so the server
never tokenizes. Each request carries ``spec.batch_size`` solutions; requests are spread over
the servers, retried and reported as in the ``openai`` policy backend (see
:class:`tts_eval.serving.http.ServerPool`).
"""

from __future__ import annotations

from typing import Annotated, Any

import torch
from pydantic import Field, PositiveFloat, PositiveInt, validate_call

from prm_backends.inputs import PRMInput
from prm_backends.runtime_base import (
    FormatScorer,
    check_max_length,
    checkpoint_parameters,
    load_with_options,
    pair_logits,
    step_prefixes,
)
from prm_backends.spec import PRMSpec
from tts_eval.serving.http import ServerError, ServerPool


def load(spec: PRMSpec, options: dict[str, Any] | None = None) -> HTTPProcessRewardModel:
    """The PRM of ``spec`` on this runtime, with ``options`` (the keyword options of
    :class:`HTTPProcessRewardModel`); an unusable option is reported against the spec's file."""
    return load_with_options(HTTPProcessRewardModel, spec, options)


class HTTPProcessRewardModel(FormatScorer):
    """A PRM served by vLLM servers at ``base_urls``. ``served_model`` is the name the servers
    list in ``/v1/models`` (default: ``spec.model``, which must also be a local folder or Hub
    id of the same tokenizer and config)."""

    runtime = "http"

    @validate_call
    def __init__(
        self,
        spec: PRMSpec,
        *,
        base_urls: list[str] | str,
        served_model: str | None = None,
        max_concurrency: PositiveInt = 8,
        timeout: PositiveFloat = 600.0,
        max_retries: Annotated[int, Field(ge=0)] = 4,
        backoff: Annotated[float, Field(ge=0)] = 1.0,
        api_key: str | None = None,
    ) -> None:
        super().__init__(spec)
        check_max_length(spec)
        self.num_parameters = checkpoint_parameters(spec)
        self.served_model = served_model or spec.model
        try:
            self.servers = ServerPool(
                base_urls,
                max_concurrency=max_concurrency,
                timeout=timeout,
                max_retries=max_retries,
                backoff=backoff,
                api_key=api_key,
            )
        except ValueError as err:
            raise spec.error("runtime_options", f"base_urls: {err}") from None
        self._check_served()

    def _check_served(self) -> None:
        for url in self.servers.base_urls:
            listing = self.servers.request("GET", "/v1/models", url=url)
            served = [m.get("id") for m in listing.get("data", []) if isinstance(m, dict)]
            if self.served_model not in served:
                raise self.spec.error(
                    "model",
                    f"{url} does not serve {self.served_model!r} (it serves {served}); start it with "
                    "this model, or pass served_model=<the name it serves>",
                )

    def close(self) -> None:
        self.servers.close()

    def head_outputs(self, inputs: list[PRMInput]) -> list[torch.Tensor]:
        size = self.spec.batch_size
        chunks = [inputs[i : i + size] for i in range(0, len(inputs), size)]
        if self.family.head == "next_token":
            path, payloads, read = "/v1/completions", [self._logprob_request(c) for c in chunks], self._read_logprobs
        else:  # "classes": the only other head a vLLM server computes
            path, payloads, read = "/pooling", [self._pooling_request(c) for c in chunks], self._read_pooling
        # Answers are read where they arrive, so an unusable one is reported with its server.
        heads = self.servers.post_all(path, payloads, read=lambda i, answer: _finite(read(chunks[i], answer)))
        return [head for chunk_heads in heads for head in chunk_heads]

    # -- LM families: log-probabilities of the good and bad tokens -------------------------

    def _logprob_request(self, chunk: list[PRMInput]) -> dict[str, Any]:
        fmt = self.next_token_format()
        pair = [fmt.good_id, fmt.bad_id]
        return {
            "model": self.served_model,
            "prompt": [ids for inp in chunk for ids in step_prefixes(inp)],
            "max_tokens": 1,
            "temperature": 0.0,
            "logprobs": len(pair),
            "logprob_token_ids": pair,
            "return_tokens_as_token_ids": True,
        }

    def _read_logprobs(self, chunk: list[PRMInput], answer: dict[str, Any]) -> list[torch.Tensor]:
        choices = sorted(answer.get("choices") or [], key=lambda c: c.get("index", 0))
        expected = sum(len(inp.score_positions) for inp in chunk)
        if len(choices) != expected:
            raise ServerError(f"/v1/completions returned {len(choices)} choices for {expected} prompts")
        fmt = self.next_token_format()
        good, bad = f"token_id:{fmt.good_id}", f"token_id:{fmt.bad_id}"
        choices_iter = iter(choices)
        heads = []
        for inp in chunk:
            rows = []
            for _ in inp.score_positions:
                top = ((next(choices_iter).get("logprobs") or {}).get("top_logprobs") or [None])[0] or {}
                if good not in top or bad not in top:
                    raise ServerError(
                        f"/v1/completions returned no log-probabilities for the good and bad tokens "
                        f"(got {sorted(top)}); the server must be vLLM with logprob_token_ids support"
                    )
                rows.append((top[good], top[bad]))
            heads.append(pair_logits(fmt, rows))
        return heads

    # -- a thinking judge's greedy writing -------------------------------------------------

    def generate_tokens(self, prompts: list[list[int]], max_tokens: int) -> list[list[int]]:
        eos = self.tokenizer.eos_token_id
        size = self.spec.batch_size
        chunks = [prompts[i : i + size] for i in range(0, len(prompts), size)]
        payloads = [
            {
                "model": self.served_model,
                "prompt": chunk,
                "max_tokens": max_tokens,
                "temperature": 0.0,
                "logprobs": 0,
                "return_tokens_as_token_ids": True,
                "skip_special_tokens": False,
                **({} if eos is None else {"stop_token_ids": [eos]}),
            }
            for chunk in chunks
        ]
        written = []
        for chunk, answer in zip(chunks, self.servers.post_all("/v1/completions", payloads)):
            choices = sorted(answer.get("choices") or [], key=lambda c: c.get("index", 0))
            if len(choices) != len(chunk):
                raise ServerError(f"/v1/completions returned {len(choices)} choices for {len(chunk)} prompts")
            for choice in choices:
                pieces = (choice.get("logprobs") or {}).get("tokens")
                if pieces is None or not all(isinstance(p, str) and p.startswith("token_id:") for p in pieces):
                    raise ServerError(
                        "/v1/completions returned no token ids; the server must be vLLM (return_tokens_as_token_ids)"
                    )
                tokens = [int(p.removeprefix("token_id:")) for p in pieces]
                written.append(tokens[:-1] if tokens and tokens[-1] == eos else tokens)
        return written

    # -- token classifier: the head's logits from /pooling ---------------------------------

    def _pooling_request(self, chunk: list[PRMInput]) -> dict[str, Any]:
        return {
            "model": self.served_model,
            "input": [inp.input_ids for inp in chunk],
            "task": "token_classify",
            "use_activation": False,  # raw logits; the family's read-out applies softmax
        }

    def _read_pooling(self, chunk: list[PRMInput], answer: dict[str, Any]) -> list[torch.Tensor]:
        data = sorted(answer.get("data") or [], key=lambda d: d.get("index", 0))
        if len(data) != len(chunk):
            raise ServerError(f"/pooling returned {len(data)} results for {len(chunk)} inputs")
        tag_id = self.classes_format().tag_id
        heads = [
            pooled_rows_at_positions(inp, torch.tensor(d["data"], dtype=torch.float32), tag_id)
            for inp, d in zip(chunk, data)
        ]
        for head in heads:
            if head.shape[-1] != 2:  # the read-out is a two-class softmax (bad, good)
                raise ServerError(
                    f"/pooling returned rows of {head.shape[-1]} value(s); the token classifier has 2 labels "
                    "(start the server with the raw token_classify pooler, not a reward/score one)"
                )
        return heads


def _finite(heads: list[torch.Tensor]) -> list[torch.Tensor]:
    """A server's numbers must be numbers: NaN (or +inf) is a server fault, never a score."""
    for head in heads:
        if torch.isnan(head).any() or torch.isposinf(head).any():
            raise ServerError("returned NaN or infinite logits/log-probabilities; check the server's model and dtype")
    return heads


def pooled_rows_at_positions(inp: PRMInput, rows: torch.Tensor, tag_id: int) -> torch.Tensor:
    """The rows of a ``/pooling`` answer at the input's score positions: per-token pooling
    gives one row per token; step pooling one row per occurrence of the tag token."""
    if rows.ndim != 2:
        raise ServerError(f"/pooling returned data of shape {tuple(rows.shape)}; expected one row of logits per token")
    if rows.shape[0] == len(inp.input_ids):
        return rows[inp.score_positions]
    tag_positions = [i for i, token in enumerate(inp.input_ids) if token == tag_id]
    if rows.shape[0] == len(tag_positions) and set(inp.score_positions) <= set(tag_positions):
        rank = {pos: r for r, pos in enumerate(tag_positions)}
        return rows[[rank[pos] for pos in inp.score_positions]]
    raise ServerError(
        f"/pooling returned {rows.shape[0]} rows for an input of {len(inp.input_ids)} tokens with "
        f"{len(tag_positions)} step tags (id {tag_id}); start the server with per-token pooling "
        '(--pooler-config \'{"tok_pooling_type": "ALL"}\') or step pooling on this tag '
        f"(--pooler-config '{{\"step_tag_id\": {tag_id}}}')"
    )

"""Policy backend that samples from OpenAI-compatible ``/v1/completions`` servers (vLLM,
SGLang, TGI, ...), possibly several on other machines.

One request per prompt (with its ``n`` samples) goes to the least-busy server; at most
``max_concurrency`` requests are in flight. Connection errors, 5xx and 429 answers are retried
with exponential backoff (``Retry-After`` is honoured), on another server when there is one;
any other 4xx is a mistake in the request and fails at once with the server's message. A
server that stays unreachable fails the call with :class:`ServerUnavailableError`, which
names the URLs and what to do.

Semantics match the ``hf`` and ``vllm`` backends: the prompt is formatted locally with the
model's tokenizer and sent as token ids (no second BOS; ``prompt_format="text"`` sends text
with ``add_special_tokens: false`` for servers without token-id prompts); stop strings are
kept in the text (``include_stop_str_in_output``); texts are decoded locally from the
returned token ids (``return_token_ids``, a vLLM extension) exactly as ``hf`` decodes them.

Token counts come from the response's ``usage``: ``prompt_tokens`` for the prompt and
``completion_tokens`` for the samples; with ``n > 1``, ``usage`` only has the sum, which is
split per sample by the length of each sample's ``token_ids`` (and must add up). A server
that returns no ``token_ids`` needs ``split_n=True`` (one request per sample) for ``n > 1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import Field, PositiveFloat, PositiveInt, validate_call

from tts_eval.policies.base import per_prompt_seeds
from tts_eval.policies.text import TokenizerText, build_completion, check_sampling
from tts_eval.serving.checkpoints import checkpoint_parameters
from tts_eval.serving.http import ServerError, ServerPool
from tts_eval.serving.vllm import PrefixCacheStats, request_seed
from tts_eval.types import Completion


class OpenAIPolicy(TokenizerText):
    """A policy served by OpenAI-compatible servers.

    ``model`` is the served model's name (what the servers' ``/v1/models`` lists, e.g. the
    Hub id or folder given to ``vllm serve``). ``tokenizer`` (default: ``model``) is a local
    folder or Hub id holding the same tokenizer (and config): prompts are formatted and
    tokenized here. ``num_parameters`` feeds the FLOPs estimate; by default it is counted from
    the config next to the tokenizer.
    """

    @validate_call
    def __init__(
        self,
        model: str,
        *,
        base_urls: list[str] | str,
        tokenizer: str | None = None,
        revision: str | None = None,
        system_prompt: str | None = None,
        num_parameters: PositiveInt | None = None,
        max_concurrency: PositiveInt = 32,
        timeout: PositiveFloat = 600.0,
        max_retries: Annotated[int, Field(ge=0)] = 4,
        backoff: Annotated[float, Field(ge=0)] = 1.0,
        api_key: str | None = None,
        prompt_format: Literal["token_ids", "text"] = "token_ids",
        split_n: bool = False,
        trust_remote_code: bool = False,
    ) -> None:
        from transformers import AutoTokenizer

        self.name = model
        self.system_prompt = system_prompt
        self.prompt_format = prompt_format
        self.split_n = split_n
        source = tokenizer or model
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(
                source, revision=revision, trust_remote_code=trust_remote_code
            )
        except (OSError, ValueError) as err:
            raise ValueError(
                f"policy backend 'openai' formats prompts locally, but cannot load the tokenizer "
                f"{source!r} ({err}); give tokenizer=<local folder or Hub id of the served model's tokenizer>"
            ) from None
        if num_parameters is None:
            try:
                num_parameters = checkpoint_parameters(source, revision=revision, trust_remote_code=trust_remote_code)
            except (OSError, ValueError) as err:
                raise ValueError(
                    f"policy backend 'openai' cannot count the parameters of {source!r} from its config "
                    f"({err}); give num_parameters=<count> (the FLOPs estimate needs it)"
                ) from None
        self.num_parameters = num_parameters
        self.servers = ServerPool(
            base_urls,
            max_concurrency=max_concurrency,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            api_key=api_key,
        )
        self._check_served()
        self.last_cache_stats = PrefixCacheStats()
        self.cache_stats = PrefixCacheStats()

    def _check_served(self) -> None:
        """Every server answers and serves ``model`` (else the error lists what it serves)."""
        for url in self.servers.base_urls:
            listing = self.servers.request("GET", "/v1/models", url=url)
            served = [m.get("id") for m in listing.get("data", []) if isinstance(m, dict)]
            if self.name not in served:
                raise ValueError(
                    f"{url} does not serve model {self.name!r} (it serves {served}); pass the served "
                    "name as the policy model, and the tokenizer's folder or Hub id as tokenizer="
                )

    def close(self) -> None:
        self.servers.close()

    def generate(
        self,
        prompts: list[str],
        *,
        n: int,
        temperature: float,
        top_p: float,
        max_tokens: int,
        stop: list[str],
        seed: int | Sequence[int] | None = None,
    ) -> list[list[Completion]]:
        check_sampling(n=n, temperature=temperature, top_p=top_p, max_tokens=max_tokens, stop=stop)
        if not prompts:
            return []
        base = {
            "model": self.name,
            "temperature": temperature,
            "top_p": top_p,
            "max_tokens": max_tokens,
            "stop": list(stop),
            "include_stop_str_in_output": True,
            "skip_special_tokens": False,
            "spaces_between_special_tokens": False,
            "return_token_ids": True,
        }
        if self.prompt_format == "token_ids":
            inputs: list[Any] = self.tokenizer(prompts, add_special_tokens=False)["input_ids"]
        else:
            inputs = list(prompts)
            base["add_special_tokens"] = False
        # vLLM refuses n > 1 with greedy decoding; the n greedy samples are one sample n times.
        copies, n = (n, 1) if temperature == 0 else (1, n)
        payloads, owners = [], []
        for i, (prompt, s) in enumerate(zip(inputs, per_prompt_seeds(seed, len(prompts)))):
            engine_seed = None if s is None else request_seed(s)
            # vLLM seeds the k-th of n samples with seed + k; split_n reproduces that.
            if self.split_n:
                shards = [(1, None if engine_seed is None else engine_seed + k) for k in range(n)]
            else:
                shards = [(n, engine_seed)]
            for count, shard_seed in shards:
                payload = {**base, "prompt": prompt, "n": count}
                if shard_seed is not None:
                    payload["seed"] = shard_seed
                payloads.append(payload)
                owners.append(i)
        read = lambda k, answer: self._completions(answer, payloads[k], stop)  # noqa: E731 - errors name the server
        answers = self.servers.post_all("/v1/completions", payloads, read=read)
        results: list[list[Completion]] = [[] for _ in prompts]
        stats = PrefixCacheStats()
        for i, (completions, cached) in zip(owners, answers):
            if not results[i]:  # a prompt's statistics once, from its first request
                stats.prompt_tokens.append(completions[0].prompt_tokens)
                stats.cached_tokens.append(cached)
            results[i] += completions
        self.last_cache_stats = stats
        self.cache_stats = self.cache_stats + stats
        return [completions * copies for completions in results]

    def _completions(
        self, answer: dict[str, Any], payload: dict[str, Any], stop: list[str]
    ) -> tuple[list[Completion], int]:
        """The completions of one answer and its count of prompt tokens served from cache."""
        where = "/v1/completions"
        choices = sorted(answer.get("choices") or [], key=lambda c: c.get("index", 0))
        usage = answer.get("usage") or {}
        if len(choices) != payload["n"] or "prompt_tokens" not in usage or "completion_tokens" not in usage:
            raise ServerError(
                f"{where} answered with {len(choices)} choices for n={payload['n']} and usage {usage!r}; "
                "an OpenAI-compatible server must return n choices and usage.prompt_tokens/completion_tokens"
            )
        counts = self._token_counts(choices, usage["completion_tokens"], payload["n"])
        cached = ((usage.get("prompt_tokens_details") or {}).get("cached_tokens")) or 0
        completions = []
        for choice, count in zip(choices, counts):
            reason = _finish_reason(choice, stop)
            token_ids = choice.get("token_ids")
            text = choice.get("text", "")
            eos = self.tokenizer.eos_token
            if token_ids is None and reason == "eos" and eos and text.endswith(eos):
                text = text[: -len(eos)]  # the text of a server without token_ids
            completions.append(
                build_completion(
                    self._decode,
                    token_ids,
                    reason,
                    usage["prompt_tokens"],
                    stop,
                    engine_text=text,
                    num_tokens=count,
                )
            )
        return completions, cached

    def _token_counts(self, choices: list[dict[str, Any]], completion_tokens: int, n: int) -> list[int]:
        if n == 1:
            return [completion_tokens]
        lengths = [len(c["token_ids"]) for c in choices if c.get("token_ids") is not None]
        if len(lengths) != len(choices):
            raise ServerError(
                f"the server reports only the total of {n} samples' tokens (usage.completion_tokens) and "
                "no per-sample token_ids; set the backend option split_n=true (one request per sample)"
            )
        if sum(lengths) != completion_tokens:
            raise ServerError(
                f"the samples' token_ids hold {sum(lengths)} tokens but usage.completion_tokens says "
                f"{completion_tokens}; the server's token accounting is inconsistent"
            )
        return lengths


def _finish_reason(choice: dict[str, Any], stop: list[str]) -> str:
    """Our finish reason from an OpenAI choice. vLLM's ``stop_reason`` tells a stop string (a
    str) from EOS (None) or a stop token (an int); other servers only say "stop", which is a
    stop string when the text ends with one."""
    reason = choice.get("finish_reason")
    if reason == "length":
        return "length"
    if reason == "stop":
        if "stop_reason" in choice:
            return "stop" if isinstance(choice["stop_reason"], str) else "eos"
        return "stop" if any(choice.get("text", "").endswith(s) for s in stop) else "eos"
    raise ServerError(f"a completion ended with finish_reason={reason!r}; expected 'stop' or 'length'")

"""The ``openai`` backend's HTTP handling against small local servers that drop connections
and answer 503, 429 or 400: bounded retries with backoff, fail-over between servers, clear
errors, and the request it sends. The real vLLM server is tested in test_http_backends.py."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from transformers import AutoTokenizer

from tts_eval import load_policy
from tts_eval.serving.http import ServerPool, ServerRequestError, ServerUnavailableError, normalize_base_url
from tts_eval.serving.vllm import request_seed

MODEL = "tiny-policy"
STEP = "ab\n\n"


class FakeServer:
    """An OpenAI-compatible stand-in. ``/v1/models`` always answers; each POST takes the next
    entry of ``script`` (the last one repeats): "drop" closes the connection unanswered, an
    int answers that status with an OpenAI error body, "ok" answers every sample with STEP."""

    def __init__(self, tokenizer, script, *, token_ids: bool = True) -> None:
        self.tokenizer = tokenizer
        self.script = list(script)
        self.token_ids = token_ids
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                self._send(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append(body)
                    action = server.script[min(len(server.requests), len(server.script)) - 1]
                if action == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                elif action == "ok":
                    self._send(200, server.completion(body))
                else:
                    headers = {"Retry-After": "0"} if action == 429 else {}
                    self._send(action, {"error": {"message": f"scripted failure {action}", "code": action}}, headers)

            def _send(self, status, payload, headers=None):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def completion(self, body: dict) -> dict:
        ids = self.tokenizer(STEP, add_special_tokens=False).input_ids
        choice = {"text": STEP, "finish_reason": "stop"}
        if self.token_ids:
            choice.update(token_ids=ids, stop_reason="\n\n")
        choices = [{**choice, "index": k} for k in range(body["n"])]
        prompt_tokens = len(body["prompt"])
        return {
            "choices": choices,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(ids) * body["n"]},
        }

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def tokenizer(tiny_qwen2_policy_dir):
    return AutoTokenizer.from_pretrained(tiny_qwen2_policy_dir)


@pytest.fixture
def serve(tokenizer):
    servers = []

    def start(script, **kwargs) -> FakeServer:
        servers.append(FakeServer(tokenizer, script, **kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def policy_for(tiny_qwen2_policy_dir, *servers, **options):
    settings = {"backoff": 0.01, "max_retries": 4, "tokenizer": str(tiny_qwen2_policy_dir), **options}
    return load_policy(
        MODEL, backend="openai", base_urls=[s if isinstance(s, str) else s.url for s in servers], **settings
    )


SAMPLING = {"temperature": 0.7, "top_p": 0.9, "max_tokens": 32, "stop": ["\n\n"]}


def test_drops_503_and_429_are_retried_until_an_answer(serve, tiny_qwen2_policy_dir, tokenizer):
    server = serve(["drop", 503, 429, "ok"])
    policy = policy_for(tiny_qwen2_policy_dir, server)
    prompt = policy.format_prompt("What is 1+1?")
    [completions] = policy.generate([prompt], n=2, seed=[42], **SAMPLING)
    assert len(server.requests) == 4
    prompt_ids = tokenizer(prompt, add_special_tokens=False).input_ids
    step_ids = tokenizer(STEP, add_special_tokens=False).input_ids
    assert [(c.text, c.num_tokens, c.finish_reason, c.prompt_tokens) for c in completions] == [
        (STEP, len(step_ids), "stop", len(prompt_ids))
    ] * 2
    sent = server.requests[-1]
    assert sent["prompt"] == prompt_ids  # token ids: no second BOS, no re-tokenisation
    assert sent["n"] == 2 and sent["seed"] == request_seed(42) and sent["model"] == MODEL
    assert {k: sent[k] for k in SAMPLING} == SAMPLING
    assert sent["include_stop_str_in_output"] is True and sent["skip_special_tokens"] is False
    assert sent["return_token_ids"] is True


def test_a_client_error_fails_at_once_with_the_servers_message(serve, tiny_qwen2_policy_dir):
    server = serve([400])
    policy = policy_for(tiny_qwen2_policy_dir, server)
    with pytest.raises(
        ServerRequestError, match=rf"{server.url}/v1/completions rejected .* HTTP 400: scripted failure 400"
    ):
        policy.generate(["x"], n=1, **SAMPLING)
    assert len(server.requests) == 1


def test_a_server_that_stays_down_fails_naming_it(serve, tiny_qwen2_policy_dir):
    server = serve([503])
    policy = policy_for(tiny_qwen2_policy_dir, server, max_retries=2)
    with pytest.raises(ServerUnavailableError) as err:
        policy.generate(["x"], n=1, **SAMPLING)
    assert len(server.requests) == 3
    assert f"{server.url}: HTTP 503: scripted failure 503" in str(err.value)
    assert "3 in all" in str(err.value) and "are running and reachable" in str(err.value)


def test_requests_spread_over_servers_and_fail_over(serve, tiny_qwen2_policy_dir):
    good, flaky = serve(["ok"]), serve(["ok"])
    policy = policy_for(tiny_qwen2_policy_dir, good, flaky, max_concurrency=4)
    prompts = [f"problem {i}" for i in range(16)]
    assert len(policy.generate(prompts, n=1, seed=0, **SAMPLING)) == 16
    assert len(good.requests) > 0 and len(flaky.requests) > 0
    assert len(good.requests) + len(flaky.requests) == 16

    flaky.script = ["drop"]  # the second server now drops every connection
    served_before = len(good.requests)
    results = policy.generate(prompts, n=1, seed=0, **SAMPLING)
    assert all(c.text == STEP for cs in results for c in cs)
    assert len(good.requests) - served_before == 16  # every prompt ended on the good server


def test_backoff_doubles_and_honours_retry_after(serve):
    server = serve([503])
    delays: list[float] = []
    pool = ServerPool([server.url], backoff=0.5, max_retries=3, sleep=delays.append)
    with pytest.raises(ServerUnavailableError):
        pool.request("POST", "/v1/completions", {"n": 1})
    assert delays == [0.5, 1.0, 2.0]

    server.script = [429]  # Retry-After: 0 never shortens the backoff
    delays.clear()
    with pytest.raises(ServerUnavailableError):
        pool.request("POST", "/v1/completions", {"n": 1})
    assert delays == [0.5, 1.0, 2.0]
    pool.close()


def test_servers_without_token_ids_need_split_n(serve, tiny_qwen2_policy_dir):
    server = serve(["ok"], token_ids=False)
    policy = policy_for(tiny_qwen2_policy_dir, server)
    with pytest.raises(RuntimeError, match="split_n=true"):
        policy.generate(["x"], n=2, **SAMPLING)
    policy = policy_for(tiny_qwen2_policy_dir, server, split_n=True)
    before = len(server.requests)
    [completions] = policy.generate(["x"], n=3, seed=[9], **SAMPLING)
    sent = server.requests[before:]
    assert [r["n"] for r in sent] == [1, 1, 1]
    assert sorted(r["seed"] for r in sent) == [request_seed(9) + k for k in range(3)]  # vLLM's seeds for n=3
    assert [(c.text, c.finish_reason) for c in completions] == [(STEP, "stop")] * 3


def test_wrong_model_and_bad_urls_fail_at_load(serve, tiny_qwen2_policy_dir):
    server = serve(["ok"])
    with pytest.raises(ValueError, match=rf"{server.url} does not serve model 'other' \(it serves \['{MODEL}'\]\)"):
        load_policy("other", backend="openai", base_urls=[server.url], tokenizer=str(tiny_qwen2_policy_dir))
    with pytest.raises(ValueError, match="needs http:// or https://"):
        normalize_base_url("127.0.0.1:8000")
    assert normalize_base_url("http://127.0.0.1:8000/v1/") == "http://127.0.0.1:8000"


def test_pooling_rows_are_read_per_token_or_per_tag():
    """A /pooling answer has one row per token (per-token pooling) or one per tag token (step
    pooling); either way the rows at the score positions come out, and anything else fails."""
    import torch

    from prm_backends.inputs import PRMInput
    from prm_backends.runtime_http import ServerError, pooled_rows_at_positions

    tag = 7
    inp = PRMInput(input_ids=[1, 7, 2, 3, 7, 4, 7], score_positions=[4, 6])  # the tag at 1 is the question's
    per_token = torch.arange(14, dtype=torch.float32).reshape(7, 2)
    assert pooled_rows_at_positions(inp, per_token, tag).tolist() == [[8, 9], [12, 13]]
    per_tag = torch.tensor([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    assert pooled_rows_at_positions(inp, per_tag, tag).tolist() == [[2, 3], [4, 5]]
    with pytest.raises(ServerError, match=r"2 rows for an input of 7 tokens with 3 step tags.*step_tag_id\": 7"):
        pooled_rows_at_positions(inp, per_tag[:2], tag)

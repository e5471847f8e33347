"""Faulty servers on 127.0.0.1: every attempt ends within its ``timeout`` (+1 s) and every
unusable answer fails with one message naming the server."""

from __future__ import annotations

import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prm_fixtures import PAPER_NAMES, tiny_prm_dir

from prm_backends.registry import load_spec
from tts_eval.serving.http import ServerError, ServerPool

TIMEOUT = 2.0


class FaultServer:
    """An HTTP server whose answers ``pooling`` and ``models`` decide (``None``: drip-feed)."""

    def __init__(self) -> None:
        self.models: object = {"data": []}
        self.pooling = lambda inputs: {"data": []}
        self.drip_headers = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                self.answer(server.models)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path == "/drip":
                    return self.drip()
                self.answer(server.pooling(body["input"]))

            def answer(self, payload: object) -> None:
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def drip(self) -> None:
                """One byte every 0.2 s for a minute: each gap is far below the timeout."""
                head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 300\r\n\r\n"
                body = b"{" + b" " * 299
                stream = (head + body) if server.drip_headers else body
                if not server.drip_headers:
                    self.wfile.write(head)
                try:
                    for byte in stream[:300]:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(0.2)
                except OSError:
                    pass  # the client hung up

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    started = FaultServer()
    yield started
    started.close()


@pytest.mark.parametrize("drip_headers", [False, True])
def test_a_drip_feeding_server_cannot_hold_a_call_past_its_timeout(server, drip_headers):
    server.drip_headers = drip_headers
    pool = ServerPool([server.url], timeout=TIMEOUT, max_retries=0)
    start = time.monotonic()
    with pytest.raises(ServerError, match=rf"{server.url}/drip gave no answer within 2 s"):
        pool.request("POST", "/drip", {"input": []})
    assert time.monotonic() - start <= TIMEOUT + 1
    pool.close()


def test_a_json_list_where_an_object_belongs_is_named(server):
    server.models = [{"id": "m"}]
    pool = ServerPool([server.url], timeout=TIMEOUT, max_retries=0)
    with pytest.raises(
        ServerError, match=rf"^{server.url}/v1/models answered with a JSON list where an object is expected"
    ):
        pool.request("GET", "/v1/models", url=server.url)
    pool.close()


@pytest.fixture
def http_prm(server):
    from prm_backends.runtime_http import HTTPProcessRewardModel

    folder = tiny_prm_dir("token_classifier")
    spec = load_spec(PAPER_NAMES["token_classifier"], model=str(folder), runtime="http", device="cpu", dtype="float32")
    server.models = {"data": [{"id": str(folder)}]}
    prm = HTTPProcessRewardModel(spec, base_urls=[server.url], timeout=TIMEOUT, max_retries=0)
    yield prm
    prm.close()


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ([0.5], r"/pooling: /pooling returned rows of 1 value\(s\); the token classifier has 2 labels"),
        ([math.nan, 0.0], r"/pooling: returned NaN or infinite logits"),
        ([math.inf, 0.0], r"/pooling: returned NaN or infinite logits"),
    ],
)
def test_unusable_pooling_rows_fail_naming_the_server(server, http_prm, row, message):
    server.pooling = lambda inputs: {"data": [{"index": i, "data": [row] * len(ids)} for i, ids in enumerate(inputs)]}
    with pytest.raises(ServerError, match=rf"^{server.url}{message}"):
        http_prm.score("What is 1 + 1?", ["1 + 1 = 2.\n\n", "So \\boxed{2}."])
    # The same server with usable rows: scores, each a probability.
    server.pooling = lambda inputs: {
        "data": [{"index": i, "data": [[0.0, 1.0]] * len(ids)} for i, ids in enumerate(inputs)]
    }
    assert http_prm.score("What is 1 + 1?", ["1 + 1 = 2.\n\n", "So \\boxed{2}."]) == pytest.approx(
        [1 / (1 + math.exp(-1))] * 2
    )

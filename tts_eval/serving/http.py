"""Requests to OpenAI-compatible servers (vLLM, SGLang, TGI, ...): a pool of base URLs with
least-busy routing, bounded concurrency, retries with exponential backoff (``Retry-After``
honoured) on connection errors, 5xx and 429, and errors that name the URL and the fix. The
``openai`` policy backend and the PRM ``http`` runtime send their requests through it."""

from __future__ import annotations

import contextlib
import functools
import itertools
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any

import httpx

# Longest wait between two attempts, whatever the backoff or a server's Retry-After asks.
MAX_BACKOFF_SECONDS = 60.0


class ServerError(RuntimeError):
    """A server could not serve a request; the message names the URL and the fix."""


class ServerRequestError(ServerError):
    """A server rejected a request (a 4xx other than 429): retrying cannot help."""


class ServerUnavailableError(ServerError):
    """Servers stayed unreachable or failing (connection errors, 5xx, 429) through every retry."""


def normalize_base_url(url: str) -> str:
    """The server root of ``url`` (a trailing ``/`` or ``/v1`` is dropped); an error for
    anything that is not an http(s) URL with a host."""
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError) as err:
        raise ValueError(f"base URL {url!r} is not a URL ({err}); give e.g. http://127.0.0.1:8000") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"base URL {url!r} needs http:// or https:// and a host, e.g. http://127.0.0.1:8000")
    root = str(parsed).rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


class ServerPool:
    """POSTs JSON requests to OpenAI-compatible servers: spread over ``base_urls`` (the one
    with the fewest requests in flight, ties in turn), at most ``max_concurrency`` at once,
    retried on connection errors, 5xx and 429 up to ``max_retries`` times with exponential
    backoff starting at ``backoff`` seconds. ``timeout`` bounds each attempt from start to
    last byte (a server that sends its answer a byte at a time cannot hold a call longer); a
    request that times out is not retried (the server may still be working on it)."""

    def __init__(
        self,
        base_urls: Sequence[str],
        *,
        max_concurrency: int = 32,
        timeout: float = 600.0,
        connect_timeout: float = 10.0,
        max_retries: int = 4,
        backoff: float = 1.0,
        api_key: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if isinstance(base_urls, str):
            base_urls = [base_urls]
        if not base_urls:
            raise ValueError("base_urls is empty: give at least one server URL, e.g. http://127.0.0.1:8000")
        self.base_urls = list(dict.fromkeys(normalize_base_url(u) for u in base_urls))
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self._sleep = sleep
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            # A fresh connection per attempt: the deadline's watchdog (see _send) must see
            # the socket from its start, and a stopped socket must not go back to a pool.
            limits=httpx.Limits(max_connections=max_concurrency, max_keepalive_connections=0),
            headers=headers,
        )
        self._executor = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="server-pool")
        self._lock = threading.Lock()
        self._in_flight = dict.fromkeys(self.base_urls, 0)
        self._turn = itertools.count()

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    def _pick(self, avoid: str | None) -> str:
        with self._lock:
            candidates = [u for u in self.base_urls if u != avoid] or self.base_urls
            fewest = min(self._in_flight[u] for u in candidates)
            idle = [u for u in candidates if self._in_flight[u] == fewest]
            url = idle[next(self._turn) % len(idle)]
            self._in_flight[url] += 1
            return url

    def _done(self, url: str) -> None:
        with self._lock:
            self._in_flight[url] -= 1

    def _send(self, method: str, target: str, payload: dict[str, Any] | None) -> httpx.Response:
        """One attempt, read to its end within ``timeout`` seconds in all. Every socket wait
        gets the time left, and a watchdog shuts the connection's socket at the deadline (a
        server trickling bytes would otherwise reset each wait)."""
        deadline = time.monotonic() + self.timeout
        streams: list[Any] = []

        def trace(event: str, info: dict[str, Any]) -> None:
            if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
                streams.append(info.get("return_value"))

        def stop() -> None:
            for stream in streams:
                sock = stream.get_extra_info("socket") if stream is not None else None
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)

        request = self._client.build_request(method, target, json=payload)
        request.extensions = {
            **request.extensions,
            "timeout": _Deadline(deadline, self.connect_timeout),
            "trace": trace,
        }
        watchdog = threading.Timer(self.timeout, stop)
        watchdog.daemon = True
        watchdog.start()
        try:
            response = self._client.send(request, stream=True)
            try:
                response.read()
            finally:
                response.close()
        except httpx.TransportError:
            if time.monotonic() >= deadline:
                raise httpx.ReadTimeout(f"no complete answer within {self.timeout:g} s") from None
            raise
        finally:
            watchdog.cancel()
        if time.monotonic() > deadline:
            raise httpx.ReadTimeout(f"no complete answer within {self.timeout:g} s")
        return response

    def request(
        self,
        method: str,
        path: str,
        payload: dict[str, Any] | None = None,
        *,
        url: str | None = None,
        read: Callable[[dict[str, Any]], Any] | None = None,
    ) -> Any:
        """One request, retried as described above (on ``url`` only, when given); returns the
        answer's JSON object, or what ``read`` makes of it. An answer that is not a JSON
        object, or that ``read`` cannot use (it raises ServerError, ValueError, KeyError,
        IndexError or TypeError), fails with one message naming the server."""
        failures: list[str] = []
        wait_hint = 0.0  # a server's Retry-After
        last_url = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                self._sleep(min(max(self.backoff * 2 ** (attempt - 1), wait_hint), MAX_BACKOFF_SECONDS))
            target = url or self._pick(avoid=last_url)
            last_url = target
            try:
                response = self._send(method, target + path, payload)
            except httpx.TimeoutException as err:
                if isinstance(err, (httpx.ConnectTimeout, httpx.PoolTimeout)):
                    failures.append(f"{target}: could not connect within the timeout ({type(err).__name__})")
                    continue
                raise ServerError(
                    f"{target}{path} gave no answer within {self.timeout:g} s; the server may be "
                    "overloaded or the request too large: raise the backend option timeout, or lower "
                    "max_concurrency"
                ) from None
            except httpx.TransportError as err:
                failures.append(f"{target}: {type(err).__name__}: {err or 'connection failed'}")
                continue
            finally:
                if url is None:
                    self._done(target)
            if response.status_code < 400:
                return _read_answer(response, target + path, read)
            message = server_message(response)
            if response.status_code == 429 or response.status_code >= 500:
                failures.append(f"{target}: HTTP {response.status_code}: {message}")
                wait_hint = _retry_after(response) or 0.0
                continue
            raise ServerRequestError(f"{target}{path} rejected the request with HTTP {response.status_code}: {message}")
        servers = url or ", ".join(self.base_urls)
        raise ServerUnavailableError(
            f"{path} failed on every attempt ({self.max_retries + 1} in all, with backoff): "
            + "; ".join(failures)
            + f". Check that the server(s) at {servers} are running and reachable (GET /health), "
            "or raise the backend option max_retries"
        )

    def post_all(
        self, path: str, payloads: list[dict[str, Any]], read: Callable[[int, dict[str, Any]], Any] | None = None
    ) -> list[Any]:
        """POST every payload concurrently; the answers in order (``read(i, answer)`` of each,
        when given; see :meth:`request`). The first failure is raised (requests not yet
        started are cancelled)."""
        futures = [
            self._executor.submit(
                self.request, "POST", path, p, read=None if read is None else functools.partial(read, i)
            )
            for i, p in enumerate(payloads)
        ]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in futures:
            error = future.exception() if future in done else None
            if error is not None:
                for other in pending:
                    other.cancel()
                raise error
        return [f.result() for f in futures]


class _Deadline(dict):
    """httpcore's per-request timeouts, computed at each use: every wait (connect, write,
    read, a free connection) gets the time left until ``deadline`` (connect at most
    ``connect``)."""

    def __init__(self, deadline: float, connect: float) -> None:
        super().__init__()
        self._deadline, self._connect = deadline, connect

    def get(self, key: str, default: Any = None) -> float:
        left = max(0.001, self._deadline - time.monotonic())
        return min(left, self._connect) if key == "connect" else left


def _read_answer(response: httpx.Response, where: str, read: Callable[[dict[str, Any]], Any] | None) -> Any:
    """The JSON object of a successful answer, through ``read``; one clear error otherwise."""
    try:
        body = response.json()
    except ValueError:
        raise ServerError(
            f"{where} answered HTTP {response.status_code} with a body that is not JSON: "
            f"{response.text[:200]!r}; is this an OpenAI-compatible server?"
        ) from None
    if not isinstance(body, dict):
        raise ServerError(
            f"{where} answered with a JSON {type(body).__name__} where an object is expected: "
            f"{response.text[:200]!r}; is this an OpenAI-compatible (vLLM) server?"
        )
    if read is None:
        return body
    try:
        return read(body)
    except ServerError as err:
        raise ServerError(f"{where}: {err}") from None
    except (ValueError, KeyError, IndexError, TypeError) as err:
        raise ServerError(
            f"{where} answered in an unexpected form ({type(err).__name__}: {err}); "
            "is this the vLLM version the docs name?"
        ) from None


def server_message(response: httpx.Response) -> str:
    """The error message in an answer (OpenAI's ``{"error": {"message": ...}}``), else its text."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return str(body)[:500]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None

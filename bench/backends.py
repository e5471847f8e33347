"""Search speed of the policy backends (hf, vllm, openai) at N=16 on a tiny random policy.

For each backend and strategy it prints the search's wall time and CPU time (this process's,
plus the server's when this script started it), its policy calls (search steps), the
seconds spent in policy and PRM calls, the generated tokens and tokens/s, the ratio of the
wall time to one plain batched generate of the same number of tokens on the same backend
(EOS ignored: what raw sampling costs), the ratio to Best-of-N in wall and in CPU time (the
target for beam search and DVTS is at most 1.5), and the share of prompt tokens vLLM served
from its prefix cache (over all samples, as vLLM's scheduler counts them: the engine's
counters in process, the server's /metrics for openai).

Wall times on a shared machine swing with its load; CPU times much less. Compare rows of
one run. ``OMP_NUM_THREADS`` defaults to 1 here (set it to use more threads per process).

The ``openai`` backend talks to a vLLM server that this script starts on 127.0.0.1 (about a
minute on a CPU machine) unless ``--base-url`` names one serving the same model. The PRM is
the tiny token classifier on the ``hf`` runtime (``--prm-runtime vllm`` for vLLM's).

    python bench/backends.py [--backends hf,vllm,openai] [--problems 8] [--n 16]
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # in-process engines
# One OpenMP thread per process, set before torch loads: on a machine shared with other jobs,
# a team of OpenMP threads spins at every barrier while one of them waits for a core, which
# made in-process vLLM 5-10x slower here (see docs/backends.md).
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import httpx  # noqa: E402
from prm_fixtures import PAPER_NAMES, tiny_prm_dir  # noqa: E402
from tiny_models import build_causal_lm, byte_tokenizer, corpus_from_data  # noqa: E402

from tts_eval import Problem, load_policy, search  # noqa: E402

STRATEGIES = ("best_of_n", "beam_search", "dvts")
KV_CACHE_BYTES = 256 * 2**20
MAX_MODEL_LEN = 2048
VLLM_CPU = {
    "dtype": "float32",
    "enforce_eager": True,
    "kv_cache_memory_bytes": KV_CACHE_BYTES,
    "block_size": 32,
    "max_model_len": MAX_MODEL_LEN,
}


class Timed:
    """Passes calls on to a policy or PRM and adds up their wall time."""

    def __init__(self, inner) -> None:
        self.inner, self.seconds, self.calls = inner, 0.0, 0
        self.name, self.num_parameters = inner.name, inner.num_parameters

    def __getattr__(self, attr):
        return getattr(self.inner, attr)

    def _timed(self, method, *args, **kwargs):
        start = time.perf_counter()
        self.calls += 1
        try:
            return getattr(self.inner, method)(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start

    def generate(self, *args, **kwargs):
        return self._timed("generate", *args, **kwargs)

    def score_batch(self, *args, **kwargs):
        return self._timed("score_batch", *args, **kwargs)

    def score_continuations(self, *args, **kwargs):
        return self._timed("score_continuations", *args, **kwargs)


# -- one plain batched generate of a given number of tokens, EOS ignored, per backend --------


def plain_generate_seconds(backend: str, policy, prompts: list[str], n: int, tokens: int) -> float:
    length = max(1, math.ceil(tokens / (len(prompts) * n)))
    start = time.perf_counter()
    if backend == "hf":
        import torch

        tok = policy.tokenizer
        tok.padding_side = "left"
        batch = tok([p for p in prompts for _ in range(n)], return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            policy.model.generate(
                **batch,
                do_sample=True,
                temperature=0.7,
                max_new_tokens=length,
                min_new_tokens=length,
                pad_token_id=policy.pad_id,
            )
    elif backend == "vllm":
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        ids = policy.tokenizer(prompts, add_special_tokens=False)["input_ids"]
        params = SamplingParams(n=n, temperature=0.7, max_tokens=length, ignore_eos=True, seed=0)
        policy.llm.generate([TokensPrompt(prompt_token_ids=i) for i in ids], params, use_tqdm=False)
    else:
        ids = policy.tokenizer(prompts, add_special_tokens=False)["input_ids"]
        payloads = [
            {
                "model": policy.name,
                "prompt": i,
                "n": n,
                "temperature": 0.7,
                "max_tokens": length,
                "ignore_eos": True,
                "seed": 0,
            }
            for i in ids
        ]
        policy.servers.post_all("/v1/completions", payloads)
    return time.perf_counter() - start


def cpu_seconds(server_pid: int | None) -> float:
    """CPU time used so far by this process (and by the vLLM server it started, with its
    engine process): unlike wall time, barely affected by other jobs on the machine."""
    import psutil

    total = time.process_time()
    if server_pid is not None:
        server = psutil.Process(server_pid)
        for proc in [server, *server.children(recursive=True)]:
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def reset_prefix_cache(backend: str, policy) -> None:
    """Each strategy starts from an empty prefix cache (the server's cannot be reset from here)."""
    if backend == "vllm":
        policy.llm.reset_prefix_cache()


def prefix_counters(backend: str, policy, base_url: str | None) -> tuple[int, int] | None:
    """Prompt tokens looked up in and found in vLLM's prefix cache so far, over all samples:
    the engine's counters in process, the server's ``/metrics`` for the openai backend."""
    if backend == "vllm":
        return policy.cache_stats.queried_tokens, policy.cache_stats.hit_tokens
    if backend == "openai":
        counts = {"vllm:prefix_cache_queries_total": 0.0, "vllm:prefix_cache_hits_total": 0.0}
        for line in httpx.get(f"{base_url}/metrics", timeout=30).text.splitlines():
            name = line.split("{", 1)[0].split(" ", 1)[0]
            if name in counts:
                counts[name] += float(line.rsplit(" ", 1)[1])
        return int(counts["vllm:prefix_cache_queries_total"]), int(counts["vllm:prefix_cache_hits_total"])
    return None


# -- a local vLLM server for the openai backend ----------------------------------------------


def start_server(model: Path, log: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # --no-enable-chunked-prefill: vLLM 0.32 on CPU fails when it splits a seeded prompt.
    command = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dtype",
        "float32",
        "--max-model-len",
        str(MAX_MODEL_LEN),
        "--enforce-eager",
        "--enable-prefix-caching",
        "--block-size",
        "32",
        "--kv-cache-memory-bytes",
        str(KV_CACHE_BYTES),
        "--enable-prompt-tokens-details",
        "--no-enable-chunked-prefill",
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(1)
    stop_server(process)
    raise SystemExit(f"the vLLM server did not start; its log:\n{log.read_text(errors='replace')[-3000:]}")


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


# -- the benchmark ---------------------------------------------------------------------------


def load_backend(backend: str, model_dir: Path, base_url: str | None):
    if backend == "hf":
        return load_policy(str(model_dir), backend="hf")
    if backend == "vllm":
        return load_policy(str(model_dir), backend="vllm", **VLLM_CPU)
    return load_policy(str(model_dir), backend="openai", base_urls=[base_url], max_concurrency=64)


def load_bench_prm(runtime: str):
    from prm_backends import load_spec

    spec = load_spec(
        PAPER_NAMES["token_classifier"],
        model=str(tiny_prm_dir("token_classifier")),
        device="cpu",
        dtype="float32",
        runtime=runtime,
        batch_size=64,
    )
    if runtime == "vllm":
        from prm_backends.runtime_vllm import VLLMProcessRewardModel

        return VLLMProcessRewardModel(spec, enforce_eager=True, kv_cache_memory_bytes=64 * 2**20)
    from prm_backends.runtime_hf import HFProcessRewardModel

    return HFProcessRewardModel(spec)


def bench_backend(
    backend: str, policy, prm, problems: list[Problem], args, base_url: str | None, server_pid: int | None
) -> None:
    # Warm up (first calls compile kernels and allocate caches) on a throw-away problem.
    warm = [Problem("warm up", policy.format_prompt("Warm up: what is 1 + 1?"))]
    search(
        warm,
        policy,
        prm,
        strategy="beam_search",
        n=args.n,
        beam_size=args.beam_size,
        max_tokens=64,
        max_step_tokens=16,
        seed=1,
    )
    walls: dict[str, float] = {}
    cpus: dict[str, float] = {}
    for strategy in STRATEGIES:
        reset_prefix_cache(backend, policy)
        timed_policy, timed_prm = Timed(policy), Timed(prm)
        before = prefix_counters(backend, policy, base_url)
        start, cpu_start = time.perf_counter(), cpu_seconds(server_pid)
        results = search(
            problems,
            timed_policy,
            timed_prm,
            strategy=strategy,
            n=args.n,
            beam_size=args.beam_size,
            max_tokens=args.max_tokens,
            max_step_tokens=args.max_step_tokens,
            seed=0,
        )
        wall = walls[strategy] = time.perf_counter() - start
        cpu = cpus[strategy] = cpu_seconds(server_pid) - cpu_start
        generated = sum(r.usage.policy_output_tokens for r in results)
        plain = plain_generate_seconds(backend, policy, [p.prompt for p in problems], args.n, generated)
        cache = "-"
        if before is not None:
            after = prefix_counters(backend, policy, base_url)
            queried, hits = after[0] - before[0], after[1] - before[1]
            cache = f"{hits / queried:.0%}" if queried else "-"
        print(
            f"{backend:<7} {strategy:<12} {wall:8.2f} {cpu:7.2f} {timed_policy.calls:6d} {timed_policy.seconds:8.2f} "
            f"{timed_prm.seconds:7.2f} {generated:8d} {generated / wall:8.0f} {wall / plain:9.2f} "
            f"{wall / walls['best_of_n']:7.2f} {cpu / cpus['best_of_n']:7.2f} {cache:>6}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="hf,vllm,openai", help="comma-separated: hf, vllm, openai")
    parser.add_argument("--problems", type=int, default=8, help="MATH-500 problems searched together")
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--beam-size", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=384, help="tokens per solution")
    parser.add_argument("--max-step-tokens", type=int, default=96)
    parser.add_argument("--hidden", type=int, default=128, help="policy hidden size (4 heads: head dim hidden/4)")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--prm-runtime", choices=["hf", "vllm"], default="hf")
    parser.add_argument("--base-url", help="a running vLLM server for the openai backend (serving the bench model)")
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(backends) - {"hf", "vllm", "openai"})
    if unknown:
        parser.error(f"unknown backend(s) {', '.join(unknown)}; choose from hf, vllm, openai")

    data = Path(os.environ.get("TTS_EVAL_DATA_DIR", REPO.parent / "shared" / "data"))
    questions = corpus_from_data(data, limit=args.problems)[0::2]
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_causal_lm(
            Path(tmp) / "policy",
            byte_tokenizer(),
            arch="qwen2",
            hidden_size=args.hidden,
            num_layers=args.layers,
            num_heads=max(1, args.hidden // 32),
            token_logits={"Ċ": 2.5, "<|im_end|>": 1.0},
        )
        prm = load_bench_prm(args.prm_runtime)
        server = None
        base_url = args.base_url
        if "openai" in backends and base_url is None:
            print("starting a vLLM server for the openai backend ...", flush=True)
            server, base_url = start_server(model_dir, Path(tmp) / "server.log")
        try:
            print(
                f"{args.problems} MATH-500 problems, N={args.n}, M={args.beam_size}, tiny Qwen2 policy "
                f"(hidden {args.hidden}, {args.layers} layers), PRM: tiny token classifier on {args.prm_runtime}; "
                f"{args.max_tokens} tokens per solution, {args.max_step_tokens} per step"
            )
            print(
                f"{'backend':<7} {'strategy':<12} {'wall s':>8} {'cpu s':>7} {'calls':>6} {'policy s':>8} {'prm s':>7} "
                f"{'gen tok':>8} {'tok/s':>8} {'vs plain':>9} {'/BoN':>7} {'cpu/BoN':>7} {'cache':>6}"
            )
            for backend in backends:
                policy = load_backend(backend, model_dir, base_url)
                problems = [Problem(q, policy.format_prompt(q)) for q in questions]
                bench_backend(backend, policy, prm, problems, args, base_url, server.pid if server else None)
                # In-process engines stay up to the end: closing one would break the others.
        finally:
            if server is not None:
                stop_server(server)


if __name__ == "__main__":
    main()

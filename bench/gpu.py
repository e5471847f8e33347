"""Real-scale shapes on one GPU: the ``hf`` policy backend and the ``hf`` PRM runtime with
random bf16 checkpoints built here (a ~0.75B Llama-shaped policy with a character
tokenizer and a newline bias, and a Qwen2.5-Math-PRM-7B-shaped token classifier), on
MATH-500 problems at N = 16. Needs only torch, transformers and tts-eval's small deps; runs
in well under 8 minutes on an H100/H200.

Printed, per strategy: wall time split into policy and PRM time; the ratio of the wall time
to one plain full-batch ``model.generate`` of the same number of tokens; slot utilisation;
PRM tokens/s; and model-FLOP utilisation against a bf16 matmul ceiling measured in the same
run. Then the per-step targets: the backend's decoding step against plain greedy
``generate`` at the same batch width (target <= 1.2x), sampled against greedy steps (<= 1x),
and Best-of-N wall time against (longest row's steps x plain step time) (target <= 1.5x).
Each step is also counted in hardware-independent terms: aten operators dispatched, those
that launch work (not views), and those that make the host wait for the device.

    python bench/gpu.py [--problems 8] [--n 16] [--batch-size 128]
    python bench/gpu.py --smoke          # tiny shapes on CPU: checks the script runs
    python bench/gpu.py --smoke --per-step-only   # only the per-step table (ops per step on CPU)

Record the output in bench/RESULTS.md with the machine and the date.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from tiny_models import byte_tokenizer, char_tokenizer, corpus_from_data  # noqa: E402

from prm_backends import load_prm  # noqa: E402
from tts_eval import Problem, load_policy, search  # noqa: E402
from tts_eval.policies.hf_decoding import DecodeStats  # noqa: E402

# (hidden, layers, heads, kv heads, intermediate)
POLICY_SHAPE = {"full": (1536, 20, 12, 4, 6144), "smoke": (64, 2, 2, 2, 128)}
PRM_SHAPE = {"full": (3584, 28, 28, 4, 18944), "smoke": (64, 2, 2, 2, 128)}
PRM_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<extra_0>"]


def matmul_ceiling(device: str, dtype: torch.dtype, size: int) -> float:
    """Sustained FLOP/s of a square matmul in ``dtype`` on ``device``."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    reps = 20 if device != "cpu" else 3
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * size**3 * reps / (time.perf_counter() - start)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def random_weights(model, std: float = 0.02) -> None:
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, std)


def build_prm(out: Path, shape, device: str, dtype: torch.dtype) -> Path:
    """A Qwen2.5-Math-PRM-shaped checkpoint: Qwen2 backbone under ``model.*``, score head
    ``Linear(h,h)-ReLU-Linear(h,2)``, byte-level tokenizer with ``<extra_0>``."""
    from safetensors.torch import save_file
    from transformers import Qwen2Config, Qwen2Model

    hidden, layers, heads, kv, inter = shape
    tokenizer = byte_tokenizer(special_tokens=PRM_SPECIALS)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        intermediate_size=inter,
        max_position_embeddings=4096,
        architectures=["Qwen2ForProcessRewardModel"],
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    with torch.device(device):
        backbone = Qwen2Model(config).to(dtype)
    random_weights(backbone)
    state = {f"model.{k}": v.contiguous() for k, v in backbone.state_dict().items()}
    for key, size in {
        "score.0.weight": (hidden, hidden),
        "score.0.bias": (hidden,),
        "score.2.weight": (2, hidden),
        "score.2.bias": (2,),
    }.items():
        state[key] = (torch.randn(size, device=device) * 0.02).to(dtype)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.cpu() for k, v in state.items()}, out / "model.safetensors", metadata={"format": "pt"})
    del backbone, state
    config.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def build_policy(out: Path, corpus, shape, device: str, dtype: torch.dtype) -> Path:
    """A Llama-shaped causal LM with a character tokenizer whose newline logit is raised (a
    shared embedding feature that the final norm makes near-constant, read by the LM head),
    so that it writes steps, as ``tests/tiny_models.build_causal_lm`` does at tiny size."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    hidden, layers, heads, kv, inter = shape
    tokenizer = char_tokenizer(corpus)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        intermediate_size=inter,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    random_weights(model)
    with torch.no_grad():
        model.get_input_embeddings().weight[:, 0] = 1.0
        head = model.get_output_embeddings().weight
        head[:, 0] = 0.0
        head[tokenizer.convert_tokens_to_ids("\n"), 0] = 2.0 / hidden**0.5
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    del model
    return out


# Operators that make the host wait for the device: item()/int()/bool() of a tensor and
# nonzero (boolean indexing). tolist()/cpu() of a CPU tensor dispatch nothing: not seen.
SYNC_OPS = {"item", "_local_scalar_dense", "is_nonzero", "nonzero", "equal", "masked_select"}


class OpCount(TorchDispatchMode):
    """aten operators dispatched while active: all of them, those that are not views (each
    launches at most one kernel on a GPU), those outside ``model``'s forward, and host syncs
    (:data:`SYNC_OPS`)."""

    def __init__(self, model) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()
        self.launching = self.outside = self.syncs = 0
        self.model, self.in_forward = model, False

    def __enter__(self):
        self.saved = self.model.__dict__.get("forward")  # an instance's own forward (hooks), if any
        inner = self.model.forward

        def forward(*args, **kwargs):
            self.in_forward = True
            try:
                return inner(*args, **kwargs)
            finally:
                self.in_forward = False

        self.model.forward = forward
        return super().__enter__()

    def __exit__(self, *exc):
        if self.saved is None:
            del self.model.forward  # the class's forward again
        else:
            self.model.forward = self.saved
        return super().__exit__(*exc)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        self.ops[name] += 1
        self.launching += not func.is_view
        self.outside += not self.in_forward
        self.syncs += name in SYNC_OPS
        return func(*args, **(kwargs or {}))


COUNTED_LENGTHS = (4, 12)  # operators per step do not depend on the length: short runs


def step_costs(run: Callable[[int], None], model, lengths: tuple[int, int], device: str) -> tuple[float, ...]:
    """Seconds, operators, launching operators, operators outside ``model``'s forward and host
    syncs per decoding step of ``run(length)`` (which must take exactly ``length`` steps): the
    difference between runs of two lengths over the extra steps, which cancels the prefill and
    per-call costs. A first run warms up (kernels loaded, allocator cache filled), so every
    path is measured warm."""
    run(lengths[1])
    # On CPU the process's CPU time, the fastest of three: other load on a shared machine only adds.
    clock = time.perf_counter if device == "cuda" else time.process_time
    seconds = []
    for length in lengths:
        best = math.inf
        for _ in range(1 if device == "cuda" else 3):
            sync(device)
            start = clock()
            run(length)
            sync(device)
            best = min(best, clock() - start)
        seconds.append(best)
    counts = []
    for length in COUNTED_LENGTHS:
        with OpCount(model) as count:
            run(length)
        counts.append(count)
    short, long = counts
    steps, counted = lengths[1] - lengths[0], COUNTED_LENGTHS[1] - COUNTED_LENGTHS[0]
    return (
        (seconds[1] - seconds[0]) / steps,
        (long.ops.total() - short.ops.total()) / counted,
        (long.launching - short.launching) / counted,
        (long.outside - short.outside) / counted,
        (long.syncs - short.syncs) / counted,
    )


@contextmanager
def eos_off(policy):
    """The backend's rows ignore EOS (as ``min_new_tokens`` makes plain generate do), so every
    row runs to ``max_tokens``."""
    saved, policy.eos_ids = policy.eos_ids, []
    try:
        yield
    finally:
        policy.eos_ids = saved


def device_busy(run: Callable[[int], None], lengths: tuple[int, int]) -> tuple[float, list[tuple[str, float]]]:
    """Milliseconds per step the GPU spends in kernels and copies during ``run`` (torch.profiler,
    the difference of two run lengths), and the five names that take most of it. Busy time far
    below the step's wall time means the host (Python, launches, syncs) is the bottleneck."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    totals = []
    for length in lengths:
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            run(length)
            torch.cuda.synchronize()
        busy: Counter[str] = Counter()
        for event in prof.events():
            if event.device_type == DeviceType.CUDA:
                busy[event.name[:60]] += event.time_range.elapsed_us()
        totals.append(busy)
    steps = lengths[1] - lengths[0]
    per_step = Counter({k: (totals[1][k] - totals[0][k]) / steps / 1000 for k in totals[1] | totals[0]})
    return sum(per_step.values()), per_step.most_common(5)


def step_runs(policy, prompts: list[str], width: int, device: str) -> dict[str, Callable[[int], None]]:
    """Runs of plain ``generate`` and of the backend on the same ``width`` rows (the prompts in
    turn, left-padded), every row to its full length. The stop string of the stop case never
    occurs (the automaton runs)."""
    rows = [prompts[i % len(prompts)] for i in range(width)]

    def plain(greedy: bool) -> Callable[[int], None]:
        return lambda length: plain_generate(policy, prompts, width, length, greedy=greedy, device=device)

    def backend(temperature: float, stop: list[str]) -> Callable[[int], None]:
        def run(length: int) -> None:
            policy.stats = DecodeStats()
            with eos_off(policy):
                policy.generate(rows, n=1, temperature=temperature, top_p=1.0, max_tokens=length, stop=stop, seed=0)
            if policy.stats.steps != length:
                raise RuntimeError(f"the backend took {policy.stats.steps} steps for {length} tokens")

        return run

    return {
        "plain generate, greedy": plain(True),
        "plain generate, sampled": plain(False),
        "backend, greedy": backend(0.0, []),
        "backend, sampled": backend(0.7, []),
        "backend, sampled + stop": backend(0.7, ["<never a stop>"]),
    }


class Timed:
    """Wall seconds spent in one method of an object."""

    def __init__(self, obj, method: str, device: str) -> None:
        self.seconds, self.device = 0.0, device
        inner = getattr(obj, method)

        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            out = inner(*args, **kwargs)
            sync(self.device)
            self.seconds += time.perf_counter() - start
            return out

        setattr(obj, method, wrapper)


def plain_generate(policy, prompts: list[str], rows: int, length: int, *, greedy: bool, device: str) -> float:
    """Seconds of one ``model.generate`` of ``rows`` rows, every row forced to ``length`` tokens."""
    tok = policy.tokenizer
    tok.padding_side = "left"
    batch = tok(
        [prompts[i % len(prompts)] for i in range(rows)], return_tensors="pt", padding=True, add_special_tokens=False
    ).to(device)
    sampling = {} if greedy else {"do_sample": True, "temperature": 0.7}
    sync(device)
    start = time.perf_counter()
    with torch.inference_mode():
        policy.model.generate(
            **batch, max_new_tokens=length, min_new_tokens=length, pad_token_id=tok.pad_token_id, **sampling
        )
    sync(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", type=int, default=8)
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=128, help="policy rows decoding together")
    parser.add_argument("--prm-batch-size", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--max-step-tokens", type=int, default=64)
    parser.add_argument("--smoke", action="store_true", help="tiny shapes on CPU, to check the script")
    parser.add_argument("--per-step-only", action="store_true", help="skip the searches; only the per-step table")
    args = parser.parse_args()
    kind = "smoke" if args.smoke else "full"
    device = "cpu" if args.smoke else "cuda"
    dtype = torch.float32 if args.smoke else torch.bfloat16
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("bench/gpu.py needs a CUDA device (or --smoke for a CPU check of the script)")
    data = Path(os.environ.get("TTS_EVAL_DATA_DIR", REPO.parent / "shared" / "data"))
    corpus = corpus_from_data(data)
    ceiling = matmul_ceiling(device, dtype, 8192 if device == "cuda" else 512)
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    print(f"device {name}; {str(dtype).removeprefix('torch.')} matmul ceiling {ceiling / 1e12:.1f} TFLOP/s")

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        policy_dir = build_policy(Path(tmp) / "policy", corpus, POLICY_SHAPE[kind], device, dtype)
        prm_dir = build_prm(Path(tmp) / "prm", PRM_SHAPE[kind], device, dtype)
        dtype_name = str(dtype).removeprefix("torch.")
        policy = load_policy(str(policy_dir), backend="hf", device=device, dtype=dtype_name, batch_size=args.batch_size)
        prm = load_prm(
            "qwen2.5-math-prm-7b", model=str(prm_dir), device=device, dtype=dtype_name, batch_size=args.prm_batch_size
        )
        print(
            f"policy {policy.num_parameters / 1e9:.2f}B, PRM {prm.num_parameters / 1e9:.2f}B parameters; "
            f"built and loaded in {time.perf_counter() - start:.0f} s"
        )
        policy_time, prm_time = Timed(policy, "generate", device), Timed(prm, "score_continuations", device)
        questions = [line for line in corpus[0::2][: args.problems]]
        problems = [Problem(q, policy.format_prompt(q)) for q in questions]
        prompts = [p.prompt for p in problems]
        rows = args.problems * args.n
        width = min(rows, args.batch_size)

        if not args.per_step_only:
            print(
                f"\n{args.problems} MATH-500 problems, N={args.n}, M=4, max_tokens {args.max_tokens}, "
                f"max_step_tokens {args.max_step_tokens}, batch_size {args.batch_size}"
            )
            print(
                f"{'strategy':<12} {'wall s':>7} {'policy s':>8} {'PRM s':>6} {'generated':>9} {'PRM tok':>8} "
                f"{'plain s':>7} {'ratio':>6} {'util':>5} {'PRM tok/s':>9} {'PRM MFU':>7} {'policy MFU':>10}"
            )
        bon_wall = bon_steps = None
        for strategy in () if args.per_step_only else ("best_of_n", "beam_search", "dvts"):
            policy.stats = DecodeStats()
            policy_time.seconds = prm_time.seconds = 0.0
            start = time.perf_counter()
            results = search(
                problems,
                policy,
                prm,
                strategy=strategy,
                n=args.n,
                seed=0,
                max_tokens=args.max_tokens,
                max_step_tokens=args.max_step_tokens,
            )
            wall = time.perf_counter() - start
            generated = sum(r.usage.policy_output_tokens for r in results)
            prm_tokens = sum(r.usage.prm_tokens for r in results)
            plain = plain_generate(
                policy, prompts, rows, max(1, math.ceil(generated / rows)), greedy=False, device=device
            )
            s = policy.stats
            prm_mfu = 2 * prm.num_parameters * prm_tokens / max(prm_time.seconds, 1e-9) / ceiling
            policy_mfu = 2 * policy.num_parameters * generated / max(policy_time.seconds, 1e-9) / ceiling
            print(
                f"{strategy:<12} {wall:7.1f} {policy_time.seconds:8.1f} {prm_time.seconds:6.1f} {generated:9d} "
                f"{prm_tokens:8d} {plain:7.1f} {wall / plain:6.2f} {s.utilisation:5.2f} "
                f"{prm_tokens / max(prm_time.seconds, 1e-9):9.0f} {prm_mfu:7.1%} {policy_mfu:10.1%}"
            )
            if strategy == "best_of_n":
                bon_wall, bon_steps = wall, max(t.num_tokens for r in results for t in r.candidates)

        # Per decoding step: the backend against plain generate at the same width.
        lengths = (16, 80) if device == "cuda" else (8, 24)
        runs = step_runs(policy, prompts, width, device)
        table = {name: step_costs(run, policy.model, lengths, device) for name, run in runs.items()}
        print(
            f"\nper decoding step at width {width} (every row to its full length, warm; ms: the difference of "
            f"{lengths[0]}- and {lengths[1]}-token runs; operators: of {COUNTED_LENGTHS[0]}- and "
            f"{COUNTED_LENGTHS[1]}-token runs)"
        )
        print(
            f"{'':<24} {'ms' if device == 'cuda' else 'CPU ms':>7} {'ops':>6} {'launching':>9} {'outside forward':>15} {'syncs':>6}"
        )
        for name, (seconds, ops, launching, outside, syncs) in table.items():
            print(f"{name:<24} {1000 * seconds:7.2f} {ops:6.1f} {launching:9.1f} {outside:15.1f} {syncs:6.2f}")
        greedy_plain = table["plain generate, greedy"][0]
        greedy, sampled = table["backend, greedy"], table["backend, sampled"]
        print(
            f"backend greedy / plain greedy: {greedy[0] / greedy_plain:.2f}x time (target <= 1.2x), "
            f"{greedy[2] / table['plain generate, greedy'][2]:.2f}x launching ops; backend sampled / greedy: "
            f"{sampled[0] / greedy[0]:.2f}x time (target <= 1x)"
        )
        if bon_wall is not None:
            print(
                f"Best-of-N wall {bon_wall:.1f} s = {bon_wall / (bon_steps * greedy_plain):.2f}x (longest row's "
                f"{bon_steps} steps x plain step time; target <= 1.5x)"
            )
        if device == "cuda":
            print("\nGPU busy per step (kernels and copies; torch.profiler), against the wall time above:")
            for name in ("plain generate, greedy", "backend, greedy", "backend, sampled"):
                try:
                    busy, top = device_busy(runs[name], (8, 24))
                except Exception as err:  # noqa: BLE001 - a diagnostic only: the figures above stand without it
                    print(f"{name:<24} profiler failed: {err!r}")
                    continue
                print(
                    f"{name:<24} {busy:7.2f} ms busy of {1000 * table[name][0]:.2f} ms; most: "
                    + ", ".join(f"{k} {v:.2f}" for k, v in top)
                )


if __name__ == "__main__":
    main()

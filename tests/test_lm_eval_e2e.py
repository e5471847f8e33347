"""The ``tts`` lm-eval model end to end, on real tiny checkpoints and the shared data:

- the stock ``lm_eval`` CLI runs math500_tts and aime24_tts offline, once per strategy; the
  results JSON must agree with the samples JSONL, and every sample with its search result;
- ``tts-eval run`` killed part-way resumes with nothing lost, nothing recomputed, and the
  results of an uninterrupted run;
- in-process: prompts, ``until``/``max_gen_toks``, chat templates, and a stock lm-eval task.

The policy is a real Llama checkpoint whose weights make it a bigram model: after the chat
template's last newline it writes a few filler steps and ``\\boxed{9}``, ``\\boxed{25}`` or
``\\boxed{2}`` at random, so the 4th MATH-500 problem (answer 9) and the 2nd AIME problem
(answer 25) are sometimes solved and grading is exercised for real. The PRM is the tiny
token-classifier checkpoint loaded through the shipped ``qwen2.5-math-prm-7b`` spec.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest
from safetensors import safe_open

pytestmark = pytest.mark.slow

# The bigram table: after a token, the next one is drawn evenly from its successors.
ANSWERING_CHAIN = {
    "\n": ("H", "\n", "\\"),
    "H": ("m",),
    "m": (".",),
    ".": ("\n",),
    "\\": ("b",),
    "b": ("o",),
    "o": ("x",),
    "x": ("e",),
    "e": ("d",),
    "d": ("{",),
    "{": ("9", "2"),
    "9": ("}",),
    "2": ("5", "}"),
    "5": ("}",),
    "}": ("<|im_end|>",),
}
POSSIBLE_ANSWERS = {"9", "25", "2"}

MATH500_DOCS, AIME24_DOCS = 5, 3
N, BEAM = 4, 2
PRM = "qwen2.5-math-prm-7b"
# strategy -> (model_args beyond the shared ones, candidates per problem, how the CLI is invoked)
STRATEGIES = {
    "cot": ("strategy=cot", 1, "lm_eval"),
    "majority": (f"strategy=majority,n={N}", N, "lm-eval"),
    "best_of_n": (f"strategy=best_of_n,n={N},prm={PRM},voting=prm_max,aggregation=min", N, "python -m lm_eval"),
    "beam_search": (f"strategy=beam_search,n={N},beam_size={BEAM},prm={PRM}", N // BEAM, "lm_eval"),
    "dvts": (f"strategy=dvts,n={N},beam_size={BEAM},prm={PRM},voting=prm_vote,aggregation=prod", N // BEAM, "lm_eval"),
    "particle_filtering": (
        f"strategy=particle_filtering,n={N},prm={PRM},voting=prm_vote,pf_temperature=0.5,resampling=multinomial",
        N,
        "lm_eval",
    ),
}
METRICS = ("acc", "maj_acc", "pass_at_n", "candidate_acc", "policy_tokens", "prm_tokens", "flops")


def build_answering_policy(out_dir: Path, data_dir: Path) -> Path:
    """A one-layer Llama whose attention and MLP write nothing, so the next token depends on
    the current one only: embeddings put each chain token on its own hidden dimension and the
    LM head gives its successors a logit of 30 (the rest 0)."""
    import torch
    from tiny_models import char_tokenizer, corpus_from_data
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = char_tokenizer(corpus_from_data(data_dir))
    hidden = 64
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    model = LlamaForCausalLM(config)
    token_id = tokenizer.convert_tokens_to_ids
    with torch.no_grad():
        for name, param in model.named_parameters():
            param.fill_(1.0 if "norm" in name else 0.0)
        embeddings, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
        for slot, (token, successors) in enumerate(ANSWERING_CHAIN.items()):
            embeddings[token_id(token), slot] = 1.0
            for successor in successors:
                head[token_id(successor), slot] = 30.0 / hidden**0.5  # RMS norm scales e_slot by sqrt(hidden)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def parameter_count(folder: Path) -> int:
    with safe_open(folder / "model.safetensors", "pt") as f:
        return sum(math.prod(f.get_slice(name).get_shape()) for name in f.keys())  # noqa: SIM118 - safe_open is no mapping


def offline_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    return env


@pytest.fixture(scope="module")
def models(tmp_path_factory, data_dir: Path) -> tuple[Path, Path]:
    from prm_fixtures import tiny_prm_dir

    policy = build_answering_policy(tmp_path_factory.mktemp("answering-policy"), data_dir)
    return policy, tiny_prm_dir("token_classifier")


@pytest.fixture(scope="module")
def cli_runs(models, tmp_path_factory, data_dir: Path) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    """One stock-CLI run per strategy, all started at once (each spends most of its time
    indexing lm-eval's built-in tasks)."""
    policy, prm = models
    root = tmp_path_factory.mktemp("lm-eval-cli")
    env = offline_env() | {"TTS_EVAL_DATA_DIR": str(data_dir)}
    samples = json.dumps({"math500_tts": list(range(MATH500_DOCS)), "aime24_tts": list(range(AIME24_DOCS))})
    bin_dir = Path(sys.executable).parent
    launchers = {
        "lm_eval": [str(bin_dir / "lm_eval")],
        "lm-eval": [str(bin_dir / "lm-eval")],
        "python -m lm_eval": [sys.executable, "-m", "lm_eval"],
    }
    procs = {}
    for strategy, (args, _, launcher) in STRATEGIES.items():
        model_args = f"policy={policy},{args},max_tokens=48,max_step_tokens=16,dtype=float32,device=cpu"
        if "prm=" in args:
            model_args += f",prm_model={prm}"
        out = root / strategy
        command = [
            *launchers[launcher],
            "--model",
            "tts",
            "--model_args",
            model_args,
            "--tasks",
            "math500_tts,aime24_tts",
            "--samples",
            samples,
            "--output_path",
            str(out),
            "--log_samples",
        ]
        procs[strategy] = (
            subprocess.Popen(command, env=env, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
            out,
        )
    # A bad setting is reported before any model loads (n must be a multiple of beam_size).
    bad_args = f"policy={policy},strategy=beam_search,n=6,beam_size=4,prm={PRM},prm_model={prm}"
    procs["bad_input"] = (
        subprocess.Popen(
            [
                launchers["lm_eval"][0],
                "--model",
                "tts",
                "--model_args",
                bad_args,
                "--tasks",
                "math500_tts",
                "--limit",
                "1",
            ],
            env=env,
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ),
        root / "bad_input",
    )
    runs = {}
    for strategy, (proc, out) in procs.items():
        output, _ = proc.communicate(timeout=900)
        runs[strategy] = (subprocess.CompletedProcess(proc.args, proc.returncode, output), out)
    return runs


def read_run(out: Path) -> tuple[dict, dict[str, list[dict]]]:
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    (results_file,) = folder.glob("results_*.json")
    results = json.loads(results_file.read_text())
    samples = {}
    for task in ("math500_tts", "aime24_tts"):
        (file,) = folder.glob(f"samples_{task}_*.jsonl")
        samples[task] = [json.loads(line) for line in file.read_text().splitlines()]
    return results, samples


def majority_answer(answers: list[str | None]) -> str | None:
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    top = max(counts.values())
    return next(a for a in answers if a is not None and counts[a] == top)  # first to reach the top count


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_stock_cli_results_agree_with_samples(strategy, cli_runs, models):
    run, out = cli_runs[strategy]
    assert run.returncode == 0, run.stdout[-4000:]
    results, samples = read_run(out)
    _, candidates_per_problem, _ = STRATEGIES[strategy]
    uses_prm = "prm=" in STRATEGIES[strategy][0]

    config = results["config"]
    policy_params, prm_params = parameter_count(models[0]), parameter_count(models[1])
    assert config["model_num_parameters"] == policy_params
    assert config["prm_num_parameters"] == (prm_params if uses_prm else None)
    assert config["tts"]["strategy"] == strategy
    assert config["tts"]["n"] == (1 if strategy == "cot" else N)

    for task, count in (("math500_tts", MATH500_DOCS), ("aime24_tts", AIME24_DOCS)):
        rows = samples[task]
        assert [r["doc_id"] for r in rows] == list(range(count))
        for row in rows:
            result = json.loads(row["filtered_resps"][0])
            candidates = result["candidates"]
            assert len(candidates) == candidates_per_problem
            prediction = candidates[result["prediction_index"]]
            assert row["resps"][0][0] == "".join(prediction["steps"])  # the chosen solution, whole
            assert result["answer"] == prediction["answer"]
            for c in candidates:
                assert c["answer"] in POSSIBLE_ANSWERS | {None}
                assert len(c["step_scores"]) == (len(c["steps"]) if uses_prm else 0)
                assert all(0.0 <= s <= 1.0 for s in c["step_scores"])
            gold = row["doc"]["answer"]
            verdicts = [c["answer"] == gold for c in candidates]
            usage = result["usage"]
            expected = {
                "acc": float(result["answer"] == gold),
                "maj_acc": float(majority_answer([c["answer"] for c in candidates]) == gold),
                "pass_at_n": float(any(verdicts)),
                "candidate_acc": sum(verdicts) / len(verdicts),
                "policy_tokens": float(usage["policy_input_tokens"] + usage["policy_output_tokens"]),
                "prm_tokens": float(usage["prm_tokens"]),
                "flops": 2.0 * policy_params * (usage["policy_input_tokens"] + usage["policy_output_tokens"])
                + 2.0 * (prm_params if uses_prm else 0) * usage["prm_tokens"],
            }
            assert {m: row[m] for m in METRICS} == pytest.approx(expected, rel=1e-9)
            tokens = [c["num_tokens"] for c in candidates]
            # Resampled particles share their ancestors' tokens, which were generated once.
            written = max(tokens) if strategy == "particle_filtering" else sum(tokens)
            assert usage["policy_output_tokens"] >= written > 0
            assert (usage["prm_tokens"] > 0) == uses_prm
            if task == "math500_tts":
                assert {"level", "subject", "unique_id"} <= set(row["doc"])
        for metric in METRICS:
            mean = sum(r[metric] for r in rows) / len(rows)
            assert results["results"][task][f"{metric},none"] == pytest.approx(mean, rel=1e-9), metric


def test_stock_cli_reports_bad_model_args_before_loading(cli_runs):
    run, _ = cli_runs["bad_input"]
    assert run.returncode != 0
    assert (
        "Error: model_args: strategy=beam_search needs n to be a multiple of beam_size (got n=6, beam_size=4)"
        in run.stdout
    )
    assert "Traceback" not in run.stdout  # one line, as a command-line error
    assert "Loading weights" not in run.stdout


def test_stock_cli_runs_grade_real_answers(cli_runs):
    """Across the runs the policy wrote boxed answers and some of them were right."""
    answers, correct = set(), 0
    for strategy in STRATEGIES:
        _, out = cli_runs[strategy]
        _, samples = read_run(out)
        for rows in samples.values():
            for row in rows:
                answers |= {c["answer"] for c in json.loads(row["filtered_resps"][0])["candidates"]}
                correct += row["pass_at_n"]
    assert answers & POSSIBLE_ANSWERS
    assert correct > 0


# -- tts-eval run: killed part-way, resumed ---------------------------------------------------


def finished_problems(checkpoints: Path) -> int:
    files = list(checkpoints.glob("*.jsonl")) if checkpoints.is_dir() else []
    return sum(max(f.read_bytes().count(b"\n") - 1, 0) for f in files)  # minus the header line


def without_timing(sample: dict) -> dict:
    """A sample with the wall-clock seconds (the only field that varies run to run) removed."""
    result = json.loads(sample["filtered_resps"][0])
    del result["usage"]["seconds"]
    return {"resps": sample["resps"], "result": result, **{m: sample[m] for m in METRICS}}


def test_killed_run_resumes_with_nothing_lost_or_recomputed(models, tmp_path, data_dir):
    from lm_eval.utils import sanitize_model_name

    policy, prm = models
    model_args = (
        f"policy={policy},strategy=beam_search,n={N},beam_size={BEAM},prm={PRM},prm_model={prm},"
        "max_tokens=48,max_step_tokens=16,dtype=float32,device=cpu,chunk_size=1"
    )
    problems = 8  # --limit 4 on each task

    def command(out: Path) -> list[str]:
        return [
            str(Path(sys.executable).parent / "tts-eval"),
            "run",
            "--model_args",
            model_args,
            "--tasks",
            "math500_tts,aime24_tts",
            "--limit",
            "4",
            "--log_samples",
            "--output_path",
            str(out),
        ]

    env = offline_env() | {"TTS_EVAL_DATA_DIR": str(data_dir)}
    reference = subprocess.Popen(
        command(tmp_path / "reference"), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    killed = subprocess.Popen(
        command(tmp_path / "resumed"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    checkpoints = tmp_path / "resumed" / sanitize_model_name(str(policy)) / "tts_checkpoints"
    deadline = time.monotonic() + 600
    while finished_problems(checkpoints) < 2:
        assert killed.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "no problem finished in time"
        time.sleep(0.05)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL

    (checkpoint,) = checkpoints.glob("*.jsonl")
    before = checkpoint.read_bytes()
    kept = before[: before.rfind(b"\n") + 1]
    assert 2 <= kept.count(b"\n") - 1 < problems
    rerun = subprocess.run(command(tmp_path / "resumed"), env=env, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stderr[-4000:]

    after = checkpoint.read_bytes()
    assert after.startswith(kept)  # what was done stays as written
    keys = [json.loads(line)["key"] for line in after.decode().splitlines()[1:]]
    assert len(keys) == len(set(keys)) == problems  # every problem, each searched once

    output, _ = reference.communicate(timeout=900)
    assert reference.returncode == 0, output[-4000:]
    expected_results, expected_samples = read_run(tmp_path / "reference")
    results, samples = read_run(tmp_path / "resumed")
    assert results["results"] == expected_results["results"]
    for task, rows in samples.items():
        assert [without_timing(r) for r in rows] == [without_timing(r) for r in expected_samples[task]]


# -- the model in-process: prompts, until, max_gen_toks, chat templates, stock tasks -----------


@pytest.fixture(scope="module")
def tts_model(models):
    from tts_eval.lm_eval.model import TTSLM

    return TTSLM(
        policy=str(models[0]),
        strategy="majority",
        n=2,
        max_tokens=40,
        system_prompt="Be brief.",
        checkpoint=False,
        device="cpu",
        dtype="float32",
    )


def request(context: str, doc: dict, **gen_kwargs):
    from lm_eval.api.instance import Instance

    return Instance("generate_until", doc, (context, gen_kwargs), 0, ("some_task", 0, 1))


def test_prompts_bare_problems_in_the_policy_template_and_keeps_other_contexts(tts_model):
    question = "What is 4 + 5?"
    own = tts_model.policy.format_prompt(question)
    assert "Be brief." in own

    bare = tts_model.problem_for(request(question, {"problem": question}))
    assert (bare.question, bare.prompt) == (question, own)
    few_shot = "Question: What is 1 + 1?\nAnswer: 2\n\nQuestion: What is 4 + 5?\nAnswer:"
    stock = tts_model.problem_for(request(few_shot, {"question": question}))
    assert (stock.question, stock.prompt) == (question, few_shot)
    no_field = tts_model.problem_for(request(few_shot, {"text": question}))
    assert (no_field.question, no_field.prompt) == (few_shot, few_shot)

    # --apply_chat_template: a 0-shot problem gets exactly its own prompt; a system message wins.
    assert tts_model.apply_chat_template([{"role": "user", "content": question}]) == own
    templated = tts_model.apply_chat_template(
        [{"role": "system", "content": "Sys"}, {"role": "user", "content": question}]
    )
    assert "Sys" in templated and "Be brief." not in templated


def test_generate_until_honours_until_and_max_gen_toks_in_request_order(tts_model):
    question = "What is 4 + 5?"
    requests = [
        request(question, {"problem": question}),
        request("Solve:\n", {}, until=["oxed"]),
        request(question, {"problem": question}, max_gen_toks=3),
        request(question, {"problem": question}),
    ]
    responses = tts_model.generate_until(requests)
    results = [r.search_result for r in responses]

    def prediction_text(result):
        return "".join(result["candidates"][result["prediction_index"]]["steps"])

    assert len(results[0]["candidates"]) == 2
    assert responses[0] == prediction_text(results[0])
    text = prediction_text(results[1])
    assert "oxed" not in responses[1] and responses[1] == text.split("oxed")[0]
    assert all(c["num_tokens"] <= 3 for c in results[2]["candidates"])
    assert (responses[3], results[3]) == (responses[0], results[0])  # same request, same answer


def test_scoring_requests_are_refused(tts_model):
    with pytest.raises(NotImplementedError, match="only supports generative tasks"):
        tts_model.loglikelihood([])
    with pytest.raises(NotImplementedError, match="only supports generative tasks"):
        tts_model.loglikelihood_rolling([])


def test_stock_generative_task_gets_the_chosen_solution(models, tmp_path, data_dir, monkeypatch):
    """lm-eval's own gsm8k (5-shot, through --include_path with a local dataset, as the Hub is
    out of reach) with --apply_chat_template: each response is the whole chosen solution."""
    import lm_eval
    from lm_eval.utils import sanitize_model_name

    from tts_eval.lm_eval.runner import run_evaluation

    tasks = tmp_path / "tasks"
    tasks.mkdir()
    gsm8k = Path(lm_eval.__file__).parent / "tasks" / "gsm8k" / "gsm8k.yaml"
    (tasks / "gsm8k_local.yaml").write_text(
        f"include: {gsm8k}\ntask: gsm8k_local\ncustom_dataset: !function local_data.load\n"
    )
    (tasks / "local_data.py").write_text(
        textwrap.dedent(
            """
        import datasets

        ROWS = [{"question": f"What is {a} plus {b}?", "answer": f"{a} + {b} = {a + b}\\n#### {a + b}"}
                for a, b in [(4, 5), (20, 5), (1, 1), (3, 6), (10, 15), (2, 7), (12, 13)]]

        def load(**_):
            return datasets.DatasetDict({"train": datasets.Dataset.from_list(ROWS[2:]),
                                         "test": datasets.Dataset.from_list(ROWS[:2])})
        """
        )
    )
    monkeypatch.setenv("TTS_EVAL_DATA_DIR", str(data_dir))
    out = tmp_path / "out"
    model_args = {
        "policy": str(models[0]),
        "strategy": "majority",
        "n": 2,
        "max_tokens": 40,
        "dtype": "float32",
        "device": "cpu",
    }
    results = run_evaluation(
        model_args,
        ["gsm8k_local"],
        include_path=[str(tasks)],
        output_path=out,
        log_samples=True,
        apply_chat_template=True,
    )

    metrics = results["results"]["gsm8k_local"]
    assert {"exact_match,strict-match", "exact_match,flexible-extract"} <= set(metrics)
    folder = out / sanitize_model_name(str(models[0]))
    (samples_file,) = folder.glob("samples_gsm8k_local_*.jsonl")
    samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
    (checkpoint,) = (folder / "tts_checkpoints").glob("*.jsonl")
    until = ["Question:", "</s>", "<|im_end|>"]
    solutions = set()
    for line in checkpoint.read_text().splitlines()[1:]:
        result = json.loads(line)["result"]
        text = "".join(result["candidates"][result["prediction_index"]]["steps"])
        solutions.add(min((text.split(s)[0] for s in until), key=len))
    assert len(samples) == 4  # 2 documents x 2 filters
    for sample in samples:
        assert sample["arguments"]["gen_args_0"]["arg_0"].endswith("<|im_start|>assistant\n")  # templated, 5-shot
        assert sample["resps"][0][0] in solutions

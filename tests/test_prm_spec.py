"""PRM specs: the shipped YAML files, and one clear error (file, field, fix) for every kind of
bad input, raised at load before anything is scored. Also the ``tts-eval prm`` commands."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml
from prm_fixtures import PAPER_NAMES, load_tiny_prm, tiny_prm_dir, without_weights
from typer.testing import CliRunner

from prm_backends import PRMConfigError, list_prms, load_prm, load_spec, prm_config_dir
from tts_eval.cli.prm_cmd import prm_app

PAPER_PRMS = {
    "math-shepherd-mistral-7b": ("step_tag", "peiyi9979/math-shepherd-mistral-7b-prm", 31.5),
    "rlhflow-8b-mistral-data": ("chat_turn", "RLHFlow/Llama3.1-8B-PRM-Mistral-Data", 28.4),
    "rlhflow-8b-deepseek-data": ("chat_turn", "RLHFlow/Llama3.1-8B-PRM-Deepseek-Data", 26.6),
    "skywork-prm-1.5b": ("value_head", "Skywork/Skywork-o1-Open-PRM-Qwen-2.5-1.5B", 36.4),
    "skywork-prm-7b": ("value_head", "Skywork/Skywork-o1-Open-PRM-Qwen-2.5-7B", 42.1),
    "qwen2.5-math-prm-7b": ("token_classifier", "Qwen/Qwen2.5-Math-PRM-7B", 73.5),
    "qwen2.5-math-prm-72b": ("token_classifier", "Qwen/Qwen2.5-Math-PRM-72B", 78.3),
    "qwen2.5-math-7b-prm800k": ("token_classifier", "Qwen/Qwen2.5-Math-7B-PRM800K", 56.5),
}


def test_the_eight_paper_prms_ship_as_yaml():
    assert set(PAPER_PRMS) <= set(list_prms())
    for name, (family, model, f1) in PAPER_PRMS.items():
        spec = load_spec(name)
        assert (spec.family, spec.model, spec.processbench_f1, spec.runtime) == (family, model, f1, "hf")
    qwen = load_spec("qwen2.5-math-prm-7b")
    assert qwen.step_tag == "<extra_0>"
    assert qwen.system_prompt == "Please reason step by step, and put your final answer within \\boxed{}."
    assert load_spec("skywork-prm-7b").step_tag == "\n"
    shepherd = load_spec("math-shepherd-mistral-7b")
    assert (shepherd.step_tag, shepherd.good_token, shepherd.bad_token, shepherd.separator) == ("ки", "+", "-", "\n")


def test_overrides_replace_fields():
    spec = load_spec("skywork-prm-1.5b", model="/some/dir", batch_size=3, device="cpu")
    assert (spec.model, spec.batch_size, spec.device, spec.max_length) == ("/some/dir", 3, "cpu", 4096)


@pytest.fixture
def my_models(tmp_path, monkeypatch) -> Path:
    """An importable package ``my_models`` holding a folder ``ckpt``."""
    package = tmp_path / "site" / "my_models"
    (package / "ckpt").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    yield package
    sys.modules.pop("my_models", None)


def test_a_pkg_model_is_the_folder_inside_the_installed_package(my_models):
    import tts_eval.toy

    assert load_spec("toy-prm").model == str(Path(tts_eval.toy.__file__).parent / "models" / "prm")
    assert load_spec("qwen2.5-math-prm-7b", model="pkg://my_models/ckpt").model == str(my_models / "ckpt")


@pytest.mark.parametrize(
    ("model", "fragments"),
    [
        ("pkg://tts_eval.toy/models/gone", ["nothing at", "'tts_eval.toy'", "tts-eval toy train --out DIR"]),
        ("pkg://my_models/gone", ["nothing at", "reinstall 'my_models' or fix the path"]),
        ("pkg://no_such_package/prm", ["no installed Python package 'no_such_package'"]),
        ("pkg://tts_eval.toy/../toy/models", ["is not of the form pkg://PACKAGE/RELATIVE/PATH"]),
        ("pkg://tts_eval.toy", ["is not of the form pkg://PACKAGE/RELATIVE/PATH"]),
    ],
)
def test_a_pkg_model_that_is_not_there_names_the_file_and_field(tmp_path, my_models, model, fragments):
    path = write_spec(tmp_path, model=model)
    with pytest.raises(PRMConfigError) as info:
        load_spec(path)
    for fragment in (str(path), "field 'model'", *fragments):
        assert fragment in str(info.value), str(info.value)


def write_spec(tmp_path: Path, **fields) -> Path:
    base = yaml.safe_load((prm_config_dir() / "qwen2.5-math-prm-7b.yaml").read_text(encoding="utf-8"))
    base["model"] = str(tiny_prm_dir("token_classifier"))
    base.update(fields)
    path = tmp_path / "my-prm.yaml"
    path.write_text(
        yaml.safe_dump({k: v for k, v in base.items() if v is not None}, allow_unicode=True), encoding="utf-8"
    )
    return path


def expect_error(path_or_name, *fragments, **overrides):
    with pytest.raises(PRMConfigError) as info:
        load_prm(path_or_name, **{"device": "cpu", "dtype": "float32", **overrides})
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.mark.parametrize(
    ("fields", "fragments"),
    [
        (
            {"family": "value-head"},
            [
                "field 'family'",
                "'step_tag', 'chat_turn', 'value_head', 'token_classifier' or 'generative'",
                "'value-head'",
            ],
        ),
        ({"model": None}, ["field 'model' is missing; add it"]),
        ({"stp_tag": "<extra_0>"}, ["unknown field 'stp_tag'; remove it or fix its spelling", "step_tag"]),
        ({"batch_size": "eight"}, ["field 'batch_size'", "'eight'"]),
        ({"system_prompt": None}, ["field 'system_prompt' is required by family 'token_classifier'"]),
        ({"good_token": "+"}, ["field 'good_token' is not used by family 'token_classifier'"]),
        ({"runtime": "tpu"}, ["field 'runtime'", "'tpu'"]),
    ],
)
def test_bad_spec_fields_name_the_file_and_field(tmp_path, fields, fragments):
    path = write_spec(tmp_path, **fields)
    expect_error(path, str(path), *fragments)


def test_bad_overrides_are_reported_like_bad_fields():
    expect_error("skywork-prm-7b", "skywork-prm-7b.yaml (with device='gpu'", "field 'device'", "'gpu'", device="gpu")
    expect_error("skywork-prm-7b", "unknown field 'batchsize'", batchsize=4)


def test_bad_runtime_options_name_the_file_the_option_and_the_known_ones():
    from prm_backends.runtime_hf import load

    spec = load_spec("skywork-prm-7b", model="/no/such/checkpoint")  # options are checked before it loads
    with pytest.raises(PRMConfigError) as err:
        load(spec, {"prefix_cache_tokens": -1, "prefix_cach_tokens": 8})
    assert str(err.value) == (
        f"{spec.source}: field 'runtime_options': option 'prefix_cache_tokens': Input should be greater than "
        "or equal to 0 (got -1); unknown option 'prefix_cach_tokens'; remove it or fix its spelling "
        "(known options: prefix_cache_tokens)"
    )


def test_yaml_that_is_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- name: x\n", encoding="utf-8")
    expect_error(path, str(path), "expected a mapping of fields")


def test_unknown_prm_name_lists_the_known_ones():
    message = expect_error("qwen-prm-7b", "unknown PRM 'qwen-prm-7b'", "qwen2.5-math-prm-7b", "YAML")
    assert all(name in message for name in PAPER_PRMS)
    expect_error("missing/spec.yaml", "missing/spec.yaml: no such PRM spec file")


@pytest.mark.parametrize(
    ("family", "field", "value", "fragment"),
    [
        ("token_classifier", "step_tag", "<extra_1>", "splits '<extra_1>' into 9 pieces"),  # byte-level BPE
        ("step_tag", "step_tag", "ab", "splits 'ab' into 2 pieces"),
        ("step_tag", "good_token", "€", "has no token '€' (it becomes the unknown token)"),  # char-level, with <unk>
        ("chat_turn", "bad_token", "--", "splits '--' into 2 pieces"),
        ("value_head", "step_tag", "<sep>", "splits '<sep>' into 5 pieces"),
    ],
)
def test_special_tokens_must_be_single_tokens_of_the_prms_tokenizer(family, field, value, fragment):
    name = PAPER_NAMES[family]
    expect_error(
        name,
        f"{name}.yaml",
        f"field '{field}'",
        fragment,
        "special token",
        model=str(tiny_prm_dir(family)),
        **{field: value},
    )


@pytest.mark.parametrize(
    ("family", "prefix", "fragment"),
    [
        ("value_head", "v_head.", "lacks the value head weights v_head.summary.*"),
        ("token_classifier", "score.", "lacks the step head weights score.0.*, score.2.*"),
        ("step_tag", "lm_head.", "lacks the language-model weights"),
    ],
)
def test_a_checkpoint_without_the_head_weights_fails_at_load(family, prefix, fragment):
    name = PAPER_NAMES[family]
    message = expect_error(name, f"{name}.yaml", "field 'model'", fragment, model=str(without_weights(family, prefix)))
    assert re.search(re.escape(prefix) + r"\w", message)  # names a missing weight


def test_a_checkpoint_of_another_architecture_is_refused():
    expect_error(
        "skywork-prm-1.5b",
        "family 'value_head' is implemented on a Qwen2 backbone",
        "model_type 'llama'",
        model=str(tiny_prm_dir("chat_turn")),
    )


def test_max_length_beyond_the_models_positions():
    expect_error(
        "qwen2.5-math-prm-7b",
        "field 'max_length'",
        "exceeds the 4096 positions",
        model=str(tiny_prm_dir("token_classifier")),
        max_length=5000,
    )


def test_a_missing_checkpoint_names_the_model_field(tmp_path):
    expect_error(
        "qwen2.5-math-prm-7b",
        "qwen2.5-math-prm-7b.yaml",
        "field 'model'",
        f"no checkpoint folder at '{tmp_path / 'nowhere'}'",
        model=str(tmp_path / "nowhere"),
    )
    (tmp_path / "empty").mkdir()
    expect_error("qwen2.5-math-prm-7b", "field 'model'", "cannot load the tokenizer", model=str(tmp_path / "empty"))


def test_a_score_count_different_from_the_step_count_is_an_error(monkeypatch):
    prm = load_tiny_prm("token_classifier")
    build = prm.format.build

    def drop_last_position(question, steps):
        built = build(question, steps)
        return type(built)(built.input_ids, built.score_positions[:-1])

    monkeypatch.setattr(prm.format, "build", drop_last_position)
    with pytest.raises(RuntimeError, match="produced 1 scores for 2 steps"):
        prm.score("q", ["a\n\n", "b"])


# --- tts-eval prm -----------------------------------------------------------------------------

runner = CliRunner()


def test_prm_list_shows_every_shipped_prm():
    result = runner.invoke(prm_app, ["list"])
    assert result.exit_code == 0, result.output
    for name, (family, model, f1) in PAPER_PRMS.items():
        line = next(line for line in result.output.splitlines() if f" {name} " in line)
        assert family in line and model in line and f"{f1:.1f}" in line


def test_prm_check_validates_without_weights_and_loads_with_load(tmp_path):
    result = runner.invoke(prm_app, ["check", str(prm_config_dir() / "qwen2.5-math-prm-72b.yaml")])
    assert result.exit_code == 0 and "OK" in result.output and "Qwen2.5-Math-PRM-72B" in result.output

    bad = write_spec(tmp_path, step_tag=None)
    result = runner.invoke(prm_app, ["check", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}: field 'step_tag' is required by family 'token_classifier'" in result.output

    model = str(tiny_prm_dir("value_head"))
    result = runner.invoke(
        prm_app, ["check", "skywork-prm-1.5b", "--load", "--model", model, "--device", "cpu", "--dtype", "float32"]
    )
    assert result.exit_code == 0, result.output
    scores = re.search(r"golden example step scores: (.*)", result.output).group(1).split(", ")
    assert len(scores) == 3 and all(0 <= float(s) <= 1 for s in scores)
    # It says what the scores mean, and how searches read this PRM by default.
    assert "probability that the step is correct" in result.output
    assert re.search(r"right solution [\d.]+, [\d.]+; last step wrong \(6 - 4 = 3\) [\d.]+, [\d.]+", result.output)
    assert "Searches read this PRM with voting prm_vote and aggregation min unless told otherwise." in result.output

"""Every check that can run before weights load does: each bad setting below fails in
``parse_model_args`` (which the ``tts`` model and ``tts-eval run`` call first) or before the
run starts, with one message naming the setting."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from tts_eval.lm_eval.runner import RunError, run_evaluation
from tts_eval.lm_eval.settings import ModelArgsError, checkpoint_folder, parse_model_args
from tts_eval.resources import PackagePathError, package_path

TOY_POLICY = "pkg://tts_eval.toy/models/policy-small"  # ties its output layer to the embeddings


def without_output_layer(tmp_path: Path, tied: bool) -> Path:
    """A copy of a tiny Qwen2 checkpoint with ``lm_head.weight`` removed from its weights."""
    from safetensors.torch import load_file, save_file
    from tiny_models import build_causal_lm, byte_tokenizer

    folder = build_causal_lm(tmp_path / f"tied-{tied}", byte_tokenizer())
    weights = load_file(folder / "model.safetensors")
    assert "lm_head.weight" in weights
    del weights["lm_head.weight"]
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    config = json.loads((folder / "config.json").read_text())
    config["tie_word_embeddings"] = tied
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_a_policy_without_output_layer_fails_unless_tied(tmp_path):
    with pytest.raises(ModelArgsError, match=r"no output layer weights \(no lm_head.weight"):
        parse_model_args({"policy": str(without_output_layer(tmp_path, tied=False))})
    parse_model_args({"policy": str(without_output_layer(tmp_path, tied=True))})  # tied: complete
    parse_model_args({"policy": TOY_POLICY})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"policy": "/no/such/policy-folder"},
            r"'policy=/no/such/policy-folder': /no/such/policy-folder does not exist",
        ),
        ({"device": "cuda:7"}, r"device='cuda:7', but this machine has"),
        (
            {"dtype": "float64"},
            r"'dtype': Input should be 'auto', 'float32', 'bfloat16' or 'float16' \(got 'float64'\)",
        ),
        ({"dtype": "int8"}, r"'dtype'"),
        ({"prm": "toy-prm", "prm_model": "/no/such/prm-folder"}, r"field 'model': /no/such/prm-folder does not exist"),
        ({"prm": "toy-prm", "prm_device": "cuda:7"}, r"field 'device': device='cuda:7'"),
    ],
)
def test_bad_settings_fail_before_loading(changes, message):
    if "cuda" in str(changes):
        import torch

        if torch.cuda.device_count() > 7:
            pytest.skip("this machine has a cuda:7")
    args = {"policy": TOY_POLICY, **({"strategy": "best_of_n", "n": 2} if "prm" in changes else {}), **changes}
    with pytest.raises(ModelArgsError, match=message):
        parse_model_args(args)


def test_a_prm_yaml_naming_a_missing_folder_fails_naming_the_file(tmp_path):
    from prm_backends.registry import find_spec_file

    yaml_file = tmp_path / "my-prm.yaml"
    text = find_spec_file("toy-prm").read_text()
    yaml_file.write_text(
        "\n".join("model: ./models/missing-prm" if line.startswith("model:") else line for line in text.splitlines())
        + "\n"
    )
    with pytest.raises(ModelArgsError, match=rf"{yaml_file}: field 'model': models/missing-prm does not exist"):
        parse_model_args({"policy": TOY_POLICY, "prm": str(yaml_file), "strategy": "best_of_n", "n": 2})


def test_an_output_path_that_is_a_file_fails_before_loading(tmp_path):
    file = tmp_path / "runs"
    file.write_text("not a folder")
    args = parse_model_args({"policy": TOY_POLICY})
    with pytest.raises(ModelArgsError, match=r"--output_path .* is a file"):
        checkpoint_folder(args, str(file))
    with pytest.raises(RunError, match=r"--output_path .* is a file"):
        run_evaluation({"policy": TOY_POLICY}, ["arith_tts"], output_path=file)
    with pytest.raises(ModelArgsError, match=r"checkpoint=.* is a file"):
        checkpoint_folder(parse_model_args({"policy": TOY_POLICY, "checkpoint": str(file)}), None)


def test_pkg_references_import_nothing(tmp_path, monkeypatch):
    """Naming a package in pkg:// never runs its code (a module that would leave a mark)."""
    package = tmp_path / "marks_when_imported"
    (package / "models").mkdir(parents=True)
    (package / "__init__.py").write_text(f"open({str(tmp_path / 'imported')!r}, 'w').close()\n")
    (package / "sub").mkdir()
    (package / "sub" / "__init__.py").write_text(f"open({str(tmp_path / 'imported')!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert package_path("pkg://marks_when_imported/models") == package / "models"
    with pytest.raises(PackagePathError, match="nothing at"):
        package_path("pkg://marks_when_imported.sub/missing")
    with pytest.raises(PackagePathError, match=r"no installed Python package 'marks_when_imported.nope'"):
        package_path("pkg://marks_when_imported.nope/x")
    assert not (tmp_path / "imported").exists()
    assert "marks_when_imported" not in sys.modules
    shutil.rmtree(package)

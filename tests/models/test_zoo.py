from pathlib import Path

import pytest

from llmos.core.errors import ModelError, NotFoundError
from llmos.models.zoo import ZOO, check_loadable, resolve_model, sentence_pooling


def test_minilm_alias_resolves_to_packaged_folder_with_mean_pooling():
    resolved = resolve_model("minilm")
    assert resolved.local and (Path(resolved.path) / "config.json").exists()
    assert sentence_pooling(resolved.path) == "mean"


def test_local_folder_and_errors(tmp_path, tiny_model_dir):
    assert resolve_model(str(tiny_model_dir)).path == str(tiny_model_dir)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match=r"no config\.json"):
        resolve_model(str(tmp_path / "empty"))
    with pytest.raises(NotFoundError, match="unknown model 'no such model'"):
        resolve_model("no such model")
    with pytest.raises(NotFoundError, match="unknown model 'org/not-here'"):
        check_loadable(resolve_model("org/not-here"))


@pytest.mark.slow
def test_smollm2_gguf_is_dequantised_once_into_safetensors(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    resolved = resolve_model("smollm2-135m", tmp_path)
    folder = Path(resolved.path)
    assert folder == tmp_path / "zoo" / "smollm2-135m"
    assert list(folder.glob("*.safetensors")) and not list(folder.glob("*.gguf"))
    stamp = (folder / "config.json").stat().st_mtime_ns
    assert resolve_model("smollm2-135m", tmp_path).path == resolved.path
    assert (folder / "config.json").stat().st_mtime_ns == stamp  # cached, not redone
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    ids = tokenizer("The capital of France is", return_tensors="pt").input_ids
    with torch.inference_mode():
        logits = model(ids).logits
    assert logits.shape[-1] == model.config.vocab_size and torch.isfinite(logits).all()
    package = ZOO["smollm2-135m"].package_dir()
    assert package is not None
    gguf = package / ZOO["smollm2-135m"].relpath
    direct = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    with torch.inference_mode():
        assert torch.allclose(direct(ids).logits, logits, atol=1e-4)


def test_gguf_conversion_prints_one_line_off_a_terminal(ws, tiny_lm_dir, monkeypatch, capfd):
    """`llmos deploy smollm2-135m` in a log or pipe: one line says what happens, and
    transformers' tqdm conversion bar (which its own switch does not silence) is hidden.
    The conversion itself is stood in for by the tiny Llama, drawn through the same bar."""
    import transformers
    import transformers.modeling_gguf_pytorch_utils as gguf_utils

    from llmos.cli.main import main

    model_load = transformers.AutoModelForCausalLM.from_pretrained
    tokenizer_load = transformers.AutoTokenizer.from_pretrained

    def converted(load):
        def from_pretrained(path, *args, gguf_file=None, **kwargs):
            if gguf_file is None:
                return load(path, *args, **kwargs)
            for _ in gguf_utils.tqdm(range(30), desc="Converting and de-quantizing GGUF tensors..."):
                pass
            return load(str(tiny_lm_dir))

        return from_pretrained

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", converted(model_load))
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", converted(tokenizer_load))
    capfd.readouterr()
    assert main(["--home", str(ws.home), "deploy", "smollm2-135m", "--name", "smol"]) == 0
    printed = capfd.readouterr()
    assert "Converting" not in printed.err and "%|" not in printed.err, printed.err
    assert printed.err.count("converting smollm2-135m from") == 1
    assert len([line for line in printed.err.splitlines() if line.strip()]) == 1, printed.err
    assert any(ws.home.rglob("zoo/smollm2-135m/config.json"))  # converted, once

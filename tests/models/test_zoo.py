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

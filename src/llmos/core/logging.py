"""One logger tree (`llmos.*`) and the quieting of chatty third-party libraries."""

from __future__ import annotations

import logging
import os
import warnings


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name if name.startswith("llmos") else f"llmos.{name}")


def quiet_third_party() -> None:
    """Silence progress bars and advisory warnings of HF libraries; llmos shows its own."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    for name in ("transformers", "peft", "accelerate", "torch", "huggingface_hub", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning, module="peft")
    warnings.filterwarnings("ignore", message=".*rank_pattern keys did not match.*")
    warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # transformers is a dependency, but core must not need it
        pass

"""One logger tree (`llmos.*`) and the quieting of chatty third-party libraries."""

from __future__ import annotations

import logging
import os
import warnings


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name if name.startswith("llmos") else f"llmos.{name}")


def quiet_third_party() -> None:
    """Silence progress bars and advisory warnings of HF libraries; llmos shows its own.

    Environment variables and logger levels only: core imports no torch or transformers
    (`models.build.quiet_transformers` does the rest once transformers is loaded)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    for name in ("transformers", "peft", "accelerate", "torch", "huggingface_hub", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning, module="peft")
    warnings.filterwarnings("ignore", message=".*rank_pattern keys did not match.*")
    warnings.filterwarnings("ignore", category=FutureWarning)

"""File system: metadata database, content-addressed artifacts, dataset and model versions."""

from llmos.store.db import Store

__all__ = ["Store"]

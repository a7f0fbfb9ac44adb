"""Fixtures shared with the serving tests."""

from tests.serve.conftest import lora_ws  # noqa: F401

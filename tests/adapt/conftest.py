"""The CLI runner of tests/cli, for the adapt verbs."""

from tests.cli.conftest import run  # noqa: F401  (a fixture)

"""DESIGN.md's rule: a package imports only from packages in rows above it (or its own)."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "llmos"
ROWS = [
    {"core"},
    {"store"},
    {"spec"},
    {"modalities"},
    {"models"},
    {"kernel"},
    {"train"},
    {"knowledge"},
    {"serve"},
    {"adapt"},
    {"security"},
    {"ops"},
    {"apps"},
    {"cli", "sdk", "api", "console"},
]
# the interfaces and the applications reach use cases only through `ops`: they may use
# the result and context types of the rows below, but no store or training function
INTERFACES = {"cli", "sdk", "api", "console", "apps"}
RANK = {pkg: i for i, row in enumerate(ROWS) for pkg in row}


def imported_packages(path: Path, runtime_only: bool = False) -> set[str]:
    """The llmos packages `path` imports; `runtime_only` leaves out imports only a type
    checker runs (`if TYPE_CHECKING:`)."""
    tree = ast.parse(path.read_text())
    typing_only: set[int] = set()
    if runtime_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
                typing_only |= {id(n) for child in node.body for n in ast.walk(child)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "llmos" and len(parts) > 1 and parts[1] in RANK:
                found.add(parts[1])
    return found


def test_every_package_is_in_the_design():
    packages = {p.name for p in SRC.iterdir() if (p / "__init__.py").exists()}
    assert packages <= set(RANK), packages - set(RANK)


def test_imports_only_go_upward():
    violations = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC)
        if len(rel.parts) < 2 or rel.parts[0] not in RANK:
            continue
        own = RANK[rel.parts[0]]
        for pkg in imported_packages(path):
            if RANK[pkg] > own:
                violations.append(f"{rel} imports llmos.{pkg}")
    assert not violations, violations


def test_core_does_not_import_torch():
    for path in (SRC / "core").rglob("*.py"):
        assert not {"torch", "transformers"} & {
            n.split(".")[0]
            for node in ast.walk(ast.parse(path.read_text()))
            for n in (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
        }, path


# what the interfaces may import besides `ops`: kernel types (core), spec types (TaskSpec),
# the security layer's policy (the api and `llmos serve` build it) and the serving runtime
# (the data plane: the api's predict and OpenAI routes feed its batcher directly, and
# `llmos serve` configures it); each other import is listed with its reason
INTERFACE_MAY_USE = {"ops", "core", "spec", "security", "serve", "cli", "sdk", "api", "console", "apps"}
INTERFACE_EXCEPTIONS = {
    ("api/routers/openai.py", "models"): "the OpenAI routes build the generation engine's SamplingParams",
    ("api/routers/openai.py", "modalities"): "the OpenAI routes parse chat messages with the one chat driver",
    ("api/server.py", "models"): "imports the model code before freezing the start-up heap out of garbage "
    "collection (nothing is called)",
    ("api/server.py", "train"): "imports the predictor before freezing the start-up heap (nothing is called)",
}


def test_interfaces_reach_use_cases_only_through_ops():
    violations = []
    for pkg in sorted(INTERFACES):
        folder = SRC / pkg
        if not folder.exists():
            continue
        for path in folder.rglob("*.py"):
            rel = str(path.relative_to(SRC))
            for used in imported_packages(path, runtime_only=True) - INTERFACE_MAY_USE:
                if (rel, used) not in INTERFACE_EXCEPTIONS:
                    violations.append(f"{rel} imports llmos.{used} (call an llmos.ops function instead)")
    assert not violations, "\n".join(sorted(violations))

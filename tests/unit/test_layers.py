"""The import graph flows one way: CLI -> orchestrator -> steps -> pure core and AWS edge.

Read from the source (every import, also those inside functions), so that a lazy import
cannot hide a cycle. The layers are the README's (Development).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "client" / "iam_sudo"
# Who may import a module of the upper layers (besides the package's lazy __init__).
TOP = {
    "cli": {"__main__"},
    "cli_console": {"cli"},
    "cli_configure": {"cli"},
    "cli_options": {"cli", "cli_console", "cli_configure"},
    "sources": {"cli", "cli_console"},
    "client": {"cli", "sources"},
}
# The pure core: no I/O of its own, and no import of anything above it.
CORE = {
    "_exceptions", "_files", "_text", "cache", "caller", "ceiling", "conditions", "config",
    "context_keys",
    "credentials",
    "documents", "fidelity", "fitting", "formats", "inifile", "policy", "principal",
    "redact", "roles", "session", "simulated",
}  # fmt: skip
# The AWS edge builds on the core alone.
EDGE = {"_aws", "_tasks", "_transports"}
STEPS = {
    "accounts", "organization",
    "iam", "lookup", "policy_store", "sts", "remote", "credential_process", "delivery",
    "console", "planning",
}  # fmt: skip


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node but those under ``if TYPE_CHECKING:`` (type names only, never run)."""
    nodes: list[ast.AST] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        nodes.append(node)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))
    return nodes


def imported_modules(path: Path) -> set[str]:
    """The iam_sudo modules ``path`` imports when it runs, by their names in the package."""
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level == 1 or base.startswith("iam_sudo"):
                module = base.removeprefix("iam_sudo").lstrip(".")
                if module:
                    found.add(module.split(".")[0])
                else:
                    found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("iam_sudo."):
                    found.add(alias.name.split(".")[1])
    return found


def graph() -> dict[str, set[str]]:
    modules = {path.stem: path for path in PACKAGE.glob("*.py")}
    return {name: imported_modules(path) & set(modules) for name, path in modules.items()}


@pytest.mark.parametrize("upper", sorted(TOP))
def test_nothing_below_imports_the_cli_or_the_orchestrator(upper: str) -> None:
    importers = {name for name, imports in graph().items() if upper in imports}
    assert importers - {"__init__"} <= TOP[upper]


def test_the_pure_core_imports_only_the_core() -> None:
    imports = graph()
    for name in CORE:
        assert imports[name] <= CORE, name


def test_the_aws_edge_knows_nothing_of_the_steps_that_use_it() -> None:
    imports = graph()
    for name in EDGE:
        assert imports[name] <= CORE | EDGE, name


def test_the_function_imports_no_client_internals_but_the_public_package() -> None:
    handler = imported_modules(ROOT / "function" / "handler.py")
    # The protocol (remote) and the core are shared; IamSudo's steps are reached through it.
    assert not handler & {"client", "cli", "cli_options", "iam", "lookup", "policy_store", "sts"}


def test_the_package_has_no_import_cycle() -> None:
    imports = graph()
    imports["__init__"] = set()  # its imports are lazy, by name, on first use
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, " -> ".join((*path, name))
        if name in done:
            return
        for child in sorted(imports[name]):
            visit(child, (*path, name))
        done.add(name)

    for name in sorted(imports):
        visit(name, ())

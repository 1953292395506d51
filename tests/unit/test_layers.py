"""The package's layers are its folders, and imports flow one way: down.

    cli/       the command line            may import everything below
    client.py  IamSudo, the orchestrator   steps, aws, settings, core
    steps/     the steps and the protocol  aws, settings, core
    aws/       the AWS edge                settings, core
    settings/  the user's AWS files        core
    core/      the pure rules              core only, and no I/O, asyncio or AWS SDK

One line per folder (``MAY_IMPORT``); a new module lands in its layer by where it is
created. Read from the source (every import, also those inside functions), so that a lazy
import cannot hide an upward edge or a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "client" / "iam_sudo"
# The layers, bottom up, and what each may import besides itself.
MAY_IMPORT: dict[str, set[str]] = {
    "core": set(),
    "settings": {"core"},
    "aws": {"core", "settings"},
    "steps": {"core", "settings", "aws"},
    "client": {"core", "settings", "aws", "steps"},
    "cli": {"core", "settings", "aws", "steps", "client"},
    "__main__": {"cli"},
}
# The pure core does no I/O and runs no event loop: none of these, at run time.
NOT_IN_CORE = {
    "asyncio", "socket", "subprocess", "os", "pathlib", "tempfile", "shutil", "http",
    "urllib.request", "fcntl", "threading", "botocore", "aiobotocore", "aioboto3", "boto3",
    "aiohttp", "asyncclick", "click",
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


def module_name(path: Path) -> str:
    """``client/iam_sudo/core/roles.py`` -> ``core.roles``; a folder's ``__init__`` is the
    folder; anything outside the package is its file's stem."""
    if PACKAGE not in path.parents:
        return path.stem
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts) or "__init__"


def imports(path: Path) -> tuple[set[str], set[str]]:
    """(the iam_sudo modules ``path`` imports when it runs, the other top-level names it does)."""
    # The folder a relative import starts from, as parts of the package.
    package = list(path.parent.relative_to(PACKAGE).parts) if PACKAGE in path.parents else []
    ours: set[str] = set()
    others: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = [*base, *(node.module or "").split(".")] if node.module else base
                if node.module:
                    ours.add(".".join(t for t in target if t))
                else:
                    ours.update(".".join([*target, alias.name]) for alias in node.names)
            elif (node.module or "").split(".")[0] == "iam_sudo":
                name = (node.module or "").removeprefix("iam_sudo").lstrip(".")
                ours.update([name] if name else [alias.name for alias in node.names])
            else:
                others.add(node.module or "")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "iam_sudo":
                    ours.add(alias.name.removeprefix("iam_sudo").lstrip("."))
                else:
                    others.add(alias.name)
    return {name for name in ours if name}, others


def layer(module: str) -> str:
    return module.split(".")[0]


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_lives_in_a_layer_folder() -> None:
    loose = {name for name in modules() if "." not in name} - {"__init__", "client", "__main__"}
    loose -= set(MAY_IMPORT)  # the folders' own __init__ modules
    assert not loose, f"modules outside a layer folder: {sorted(loose)}"


@pytest.mark.parametrize("folder", sorted(MAY_IMPORT))
def test_a_layer_imports_only_itself_and_the_layers_below(folder: str) -> None:
    allowed = MAY_IMPORT[folder] | {folder}
    for name, path in modules().items():
        if layer(name) != folder:
            continue
        upward = {target for target in imports(path)[0] if layer(target) not in allowed}
        assert not upward, f"{name} imports {sorted(upward)} from a layer above {folder}"


def test_the_pure_core_does_no_io_and_uses_no_aws_sdk() -> None:
    for name, path in modules().items():
        if layer(name) == "core":
            used = {other for other in imports(path)[1] if other.split(".")[0] in NOT_IN_CORE}
            used |= {other for other in imports(path)[1] if other in NOT_IN_CORE}
            assert not used, f"{name} imports {sorted(used)}"


def test_the_function_imports_nothing_of_the_cli() -> None:
    for path in (ROOT / "function").glob("*.py"):
        assert not {m for m in imports(path)[0] if layer(m) == "cli"}, path.name


def test_the_package_has_no_import_cycle() -> None:
    graph = {name: imports(path)[0] & set(modules()) for name, path in modules().items()}
    graph["__init__"] = set()  # its imports are lazy, by name, on first use
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, " -> ".join((*path, name))
        if name in done:
            return
        for child in sorted(graph.get(name, ())):
            visit(child, (*path, name))
        done.add(name)

    for name in sorted(graph):
        visit(name, ())


def test_function_modules_have_no_import_cycle() -> None:
    local = {path.stem: path for path in (ROOT / "function").glob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in local.items():
        tree = ast.parse(path.read_text())
        graph[name] = {
            (node.module or "").split(".")[0]
            for node in _runtime_nodes(tree)
            if isinstance(node, ast.ImportFrom) and node.level == 1
        } & set(local)
    for name in graph:
        seen: set[str] = set()
        stack = list(graph[name])
        while stack:
            child = stack.pop()
            assert child != name, f"function/{name}.py imports itself through {sorted(seen)}"
            if child not in seen:
                seen.add(child)
                stack.extend(graph[child])

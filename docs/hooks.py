"""mkdocs hooks: the README is the site's front page, and the API reference is complete.

The README links into the manual as ``docs/usage.md`` (right on GitHub); on the site those
pages sit beside it, so the prefix goes, and ``mkdocs build --strict`` checks the README's
links like any page's. A page that links back to ``../README.md`` gets the front page.

``docs/api.md`` must render every name ``iam_sudo.__all__`` exports, and nothing else
under ``iam_sudo.``: a new public name without its reference entry fails the build.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

_README_LINK = re.compile(r"\]\(docs/")
_BACK_LINK = re.compile(r"\]\(\.\./README\.md")
_RENDERED = re.compile(r"(?m)^::: iam_sudo\.(\w+)\s*$")


def _exported(init: Path) -> set[str]:
    """The names in ``__all__`` of the package's ``__init__.py``, read without importing it."""
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets
        ):
            return set(ast.literal_eval(node.value))
    raise PluginError(f"{init}: no __all__")


def on_files(files: Files, config: Any) -> Files:
    """Add the README, its links rewritten, as ``index.md``; check the API reference."""
    root = Path(config.config_file_path).parent
    exported = _exported(root / "client" / "iam_sudo" / "__init__.py")
    rendered = set(_RENDERED.findall((Path(config.docs_dir) / "api.md").read_text("utf-8")))
    if exported != rendered:
        raise PluginError(
            "docs/api.md does not render iam_sudo.__all__: "
            f"missing {sorted(exported - rendered)}, not exported {sorted(rendered - exported)}"
        )
    text = _README_LINK.sub("](", (root / "README.md").read_text(encoding="utf-8"))
    files.append(File.generated(config, "index.md", content=text))
    return files


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Point a page's links to the README at the front page."""
    return _BACK_LINK.sub("](index.md", markdown)

"""The function's deployment archive: the handler and the pure-Python packages it imports."""

from __future__ import annotations

import zipfile
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import yaml

import iam_sudo

HANDLER = Path(__file__).with_name("handler.py")
# Everything but the command line (cli/, and __main__ which runs it): the CLI needs
# asyncclick, which the function neither has nor needs. Derived from the layer folders, so
# a new CLI module stays out and a new library module goes in without a list to keep.
_CLI_ONLY = ("cli", "__main__.py")
_EPOCH = (1980, 1, 1, 0, 0, 0)


def archive_files() -> dict[str, Path]:
    """Member name -> source: handler.py, iam_sudo/ but its CLI, and PyYAML's pure Python
    and licence."""
    files = {"handler.py": HANDLER}
    for package, skip in ((iam_sudo, _CLI_ONLY), (yaml, ())):
        root = Path(package.__file__ or "").parent
        for path in sorted(root.rglob("*")):
            member = path.relative_to(root)
            if member.parts[0] in skip or "__pycache__" in member.parts:
                continue
            if path.suffix == ".py" or path.name == "py.typed":
                files[f"{root.name}/{member.as_posix()}"] = path
    try:
        licenses = [f for f in distribution("PyYAML").files or [] if f.name.startswith("LICENSE")]
    except PackageNotFoundError:
        licenses = []
    for license_file in licenses[:1]:
        files["yaml/LICENSE"] = Path(str(license_file.locate()))
    return files


def build_archive(destination: Path) -> Path:
    """Write the archive as a reproducible zip: same sources, same bytes, same hash."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.with_suffix(".tmp")
    with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, path in sorted(archive_files().items()):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    if destination.exists() and destination.read_bytes() == temporary.read_bytes():
        temporary.unlink()
    else:
        temporary.replace(destination)
    return destination

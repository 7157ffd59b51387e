"""The files minispec ships besides its code: the grammar and the spec library.

In the repository they live in grammar/ and specs/ (their single source); the
build (pyproject.toml, `[tool.setuptools.package-dir]`) puts them inside the
package as minispec/grammar/ and minispec/specs/, where `importlib.resources`
finds them wherever the wheel was installed. A source checkout (an editable
install, or PYTHONPATH) has no such folders inside the package, so each lookup
falls back to the checkout's own folder beside the package.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from minispec.errors import MinispecError


def _shipped(folder: str) -> Path:
    """minispec/<folder> in an installed package, else <checkout>/<folder>."""
    packaged = resources.files("minispec") / folder
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / folder


def grammar_text() -> str:
    """The Lark grammar of the language."""
    return (_shipped("grammar") / "minispec.lark").read_text(encoding="utf-8")


def spec_library() -> Path:
    """The folder of shipped specs (the examples, and lib/ with the files they include)."""
    return _shipped("specs")


def copy_examples(destination: str | Path) -> list[Path]:
    """Copy the shipped specs (with lib/) into `destination` for a user to edit.

    Refuses to overwrite: a file already there is an error naming it."""
    source, destination = spec_library(), Path(destination)
    if destination.exists() and not destination.is_dir():
        raise MinispecError(f"{destination} is a file, not a folder", hint="give a folder to copy the specs into")
    files = sorted(p for p in source.rglob("*.mdl"))
    targets = [destination / p.relative_to(source) for p in files]
    existing = [t for t in targets if t.exists()]
    if existing:
        raise MinispecError(f"{existing[0]} already exists; not overwriting it",
                            hint="choose an empty or new folder")
    try:
        for file, target in zip(files, targets):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, target)
    except OSError as error:
        raise MinispecError(f"cannot copy the examples into {destination}: {error.strerror}") from None
    return targets

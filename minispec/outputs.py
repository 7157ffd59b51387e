"""Where commands write: one check of a user's output path, and one way to write a file.

    path = output_path(text, "--out")        # refuses "", NUL, too long, /proc, /sys, /dev
    write_output(path, text, "-o")           # makes missing folders; OSError -> MinispecError

A path a user gives is checked before anything is computed, and every
refusal of the file system (read-only, full, not a folder, permission)
becomes one MinispecError naming the option and the path, never a traceback.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from minispec.errors import MinispecError

SYSTEM_TREES = ("/proc", "/sys", "/dev")  # kernel interfaces, never a place for results
REASONS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
           errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
           errno.EPERM: "permission denied", errno.ENAMETOOLONG: "the name is too long",
           errno.ENOTDIR: "a part of the path is a file, not a folder", errno.EISDIR: "it is a folder"}


def reason(error: OSError) -> str:
    """A short human reason for a file-system error."""
    return REASONS.get(error.errno, error.strerror or str(error))


def output_path(text: str | os.PathLike, option: str) -> Path:
    """`text` as a path to write to, refused when it cannot be one (empty,
    a NUL byte, a name longer than the file system allows, a system tree)."""
    raw = os.fspath(text)
    if not str(raw).strip():
        raise MinispecError(f"{option} is empty", hint=f"give {option} a path, for example {option} runs/first")
    if "\0" in str(raw):
        raise MinispecError(f"{option} contains a NUL byte", hint="choose a plain path")
    path = Path(raw)
    absolute = Path(os.path.abspath(path))
    limit = _limit("PC_NAME_MAX", 255)
    for part in absolute.parts:
        if len(os.fsencode(part)) > limit:
            raise MinispecError(f"{option} {_short(raw)}: a name in it is longer than the {limit} bytes "
                                "the file system allows", hint="choose a shorter path")
    if len(os.fsencode(str(absolute))) >= _limit("PC_PATH_MAX", 4096):
        raise MinispecError(f"{option} {_short(raw)}: the path is too long", hint="choose a shorter path")
    for tree in SYSTEM_TREES:
        if absolute == Path(tree) or Path(tree) in absolute.parents:
            raise MinispecError(f"{option} {_short(raw)} is under {tree}, a system folder where results cannot go",
                                hint="choose a folder of your own")
    return path


def make_folder(path: Path, option: str) -> bool:
    """Make `path` a folder (with its parents); True when it was created here."""
    if path.exists() and not path.is_dir():
        raise MinispecError(f"{option} {_short(path)} exists and is not a folder", hint=f"choose another {option}")
    if path.is_dir():
        return False
    try:
        path.mkdir(parents=True)
    except OSError as error:
        raise MinispecError(f"cannot create the folder {_short(path)} ({option}): {reason(error)}",
                            hint=f"choose another {option}, in a folder you can write") from None
    return True


def write_output(path: Path, content: str | bytes, option: str) -> None:
    """Write a command's output file, making its missing folders."""
    if path.is_dir():
        raise MinispecError(f"{option} {_short(path)} is a folder", hint="name a file inside it")
    make_folder(path.parent, option)
    try:
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    except OSError as error:
        raise MinispecError(f"cannot write {_short(path)} ({option}): {reason(error)}",
                            hint=f"choose another {option}, in a folder you can write") from None


def _limit(name: str, default: int) -> int:
    try:
        return os.pathconf("/", name)
    except (OSError, ValueError):
        return default


def _short(path: str | os.PathLike) -> str:
    text = os.fspath(path)
    return f"`{text}`" if len(text) <= 80 else f"`{text[:60]}…` ({len(text)} characters)"

"""The framework is written by hand: no torch.nn, torch.autograd, torch.func or torch.optim."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import minispec.scratch

PACKAGE = Path(minispec.scratch.__file__).parent
FORBIDDEN = ("torch.nn", "torch.autograd", "torch.func", "torch.optim")
ALLOWED_ROOTS = {"torch", "math", "minispec"}
ALLOWED_MINISPEC = ("minispec.init", "minispec.kernels", "minispec.masks", "minispec.scratch")
# the modules outside the package that it may import, held to the same rule
SHARED = [PACKAGE.parent / "init.py", PACKAGE.parent / "kernels.py", PACKAGE.parent / "masks.py"]


def forbidden(dotted: str) -> bool:
    return any(dotted == f or dotted.startswith(f + ".") for f in FORBIDDEN)


def dotted(node: ast.AST) -> str | None:
    """'a.b.c' for an attribute chain rooted at a name, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def violations(source: str) -> list[str]:
    tree = ast.parse(source)
    found = []
    aliases: dict[str, str] = {}  # local name -> module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
            for a in node.names:
                aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import inside minispec.scratch
                base = "minispec.scratch" + ("." + base if base else "")
            modules = [f"{base}.{a.name}" for a in node.names] + [base]
            for a in node.names:
                aliases[a.asname or a.name] = f"{base}.{a.name}"
        else:
            continue
        for m in modules:
            root = m.split(".")[0]
            if forbidden(m):
                found.append(f"line {node.lineno}: imports {m}")
            elif root == "minispec" and m != "minispec" and not m.startswith(ALLOWED_MINISPEC):
                found.append(f"line {node.lineno}: imports {m} (only minispec.init, minispec.kernels, minispec.masks and minispec.scratch)")
            elif root not in ALLOWED_ROOTS and root not in sys.stdlib_module_names and root != "__future__":
                found.append(f"line {node.lineno}: imports {m} (only torch, math, the stdlib, minispec.init)")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain = dotted(node)
            if chain is None:
                continue
            head, _, rest = chain.partition(".")
            resolved = aliases.get(head, head) + ("." + rest if rest else "")
            if forbidden(resolved):
                found.append(f"line {node.lineno}: uses {chain}")
            if node.attr in ("requires_grad", "requires_grad_", "enable_grad"):
                found.append(f"line {node.lineno}: relies on autograd ({chain})")
    return sorted(set(found))


def test_package_files_use_only_tensor_ops():
    files = sorted(PACKAGE.glob("*.py")) + SHARED
    assert files
    problems = {f.name: v for f in files if (v := violations(f.read_text()))}
    assert not problems, problems


def test_checker_catches_forbidden_uses():
    assert violations("import torch.nn")
    assert violations("import torch.nn.functional as F")
    assert violations("from torch import nn")
    assert violations("from torch.nn import functional")
    assert violations("from torch import autograd")
    assert violations("import torch\ny = torch.nn.functional.relu(x)")
    assert violations("import torch as T\ny = T.optim.SGD")
    assert violations("import torch\ng = torch.func.grad")
    assert violations("import torch\nx.requires_grad_(True)")
    assert violations("import numpy")
    assert violations("import math, torch.autograd")
    assert violations("from minispec.backends import torch_backend")
    assert not violations("import torch\nimport math\nfrom minispec import init\nfrom minispec.scratch.module import Module\ny = torch.bmm(a, b)")

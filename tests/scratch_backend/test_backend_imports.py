"""The hand-written backend stays hand-written: no torch.nn, torch.autograd, torch.func or torch.optim."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import minispec.backends.scratch_graph

FILE = Path(minispec.backends.scratch_graph.__file__)
FORBIDDEN = ("torch.nn", "torch.autograd", "torch.func", "torch.optim")
ALLOWED_MINISPEC = ("minispec.scratch", "minispec.ir", "minispec.backends.base", "minispec.backends.weights", "minispec.init",
                    "minispec.backends.replicas",
                    "minispec.masks")


def _forbidden(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in FORBIDDEN)


def _chain(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def violations(source: str) -> list[str]:
    """Forbidden imports and attribute uses (through any alias) in one module's source."""
    found, aliases = [], {}
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
            for a in node.names:
                aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = "minispec.backends" + ("." + base if base else "")
            # the package itself is not checked against the minispec allow-list: its names are
            modules = [f"{base}.{a.name}" for a in node.names] + ([] if base.startswith("minispec") else [base])
            for a in node.names:
                aliases[a.asname or a.name] = f"{base}.{a.name}"
        else:
            continue
        for m in modules:
            root = m.split(".")[0]
            if _forbidden(m):
                found.append(f"line {node.lineno}: imports {m}")
            elif root == "minispec" and m != "minispec" and not m.startswith(ALLOWED_MINISPEC):
                found.append(f"line {node.lineno}: imports {m}")
            elif root not in ("torch", "minispec", "__future__") and root not in sys.stdlib_module_names:
                found.append(f"line {node.lineno}: imports {m} (only torch, the stdlib and minispec)")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and (chain := _chain(node)):
            head, _, rest = chain.partition(".")
            resolved = aliases.get(head, head) + ("." + rest if rest else "")
            if _forbidden(resolved):
                found.append(f"line {node.lineno}: uses {chain}")
            if node.attr in ("requires_grad", "requires_grad_", "enable_grad", "backward_hook"):
                found.append(f"line {node.lineno}: relies on autograd ({chain})")
    return sorted(set(found))


def test_scratch_graph_uses_only_tensor_ops_and_the_framework():
    assert violations(FILE.read_text()) == []


def test_checker_catches_forbidden_uses():
    assert violations("import torch.nn")
    assert violations("from torch import nn")
    assert violations("from torch.nn import functional as F")
    assert violations("import torch as T\nT.autograd.grad(y, x)")
    assert violations("import torch\ntorch.optim.SGD([], lr=1)")
    assert violations("import torch\nx.requires_grad_(True)")
    assert violations("from minispec.backends.torch_nn import TorchModel")
    assert violations("from minispec.backends import torch_nn")
    assert violations("import numpy")
    assert not violations(
        "import torch\nfrom minispec import scratch\nfrom minispec.ir.model import Program\n"
        "from minispec.backends.weights import initial_state\nfrom minispec.backends import base\ny = torch.bmm(a, b)"
    )

"""The pictures in docs/ are made by the commands written beside them, and are current."""

import html
import re

import pytest

from minispec.compiler import compile_file
from minispec.render import build_drawing
from tests.conftest import ROOT

DOC = (ROOT / "docs/graph.md").read_text()
PICTURES = re.findall(r"^\s*minispec graph (\S+) -o (docs/img/\S+\.svg)( --fold)?$", DOC, re.M)


def test_every_picture_has_its_command():
    shown = set(re.findall(r"\]\((img/[^)]+)\)", DOC))
    assert shown == {f"img/{path.split('/')[-1]}" for _, path, _ in PICTURES}
    assert ("specs/caux.mdl", "docs/img/caux.svg", "") in PICTURES


@pytest.mark.parametrize("spec,path,fold", PICTURES, ids=[p for _, p, _ in PICTURES])
def test_picture_shows_the_current_drawing(spec, path, fold):
    svg = html.unescape((ROOT / path).read_text())
    drawing = build_drawing(compile_file(ROOT / spec), fold=bool(fold))
    for node in drawing.nodes:
        for line in ([node.name] if node.name else []) + node.lines + [b.strip() for b in node.body]:
            assert f">{line}<" in svg, f"{path} is stale: `{line}` is missing; rerun: minispec graph {spec} -o {path}{fold}"
    for line in drawing.legend:
        assert f">{line}<" in svg

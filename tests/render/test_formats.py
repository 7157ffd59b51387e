"""DOT and Mermaid text, escaping, and render() by extension."""

import re
import shutil
import subprocess

import pytest

from minispec.compiler import compile_file
from minispec.errors import MinispecError
from minispec.render import Cluster, DrawEdge, DrawNode, Drawing, build_drawing, render, to_dot, to_mermaid
from tests.conftest import ROOT, SPECS
from tests.render.helpers import RESNET

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")

NASTY = 'a"b|c<d>e[f]{g}(h)#i;&j\\k end'


def nasty_drawing() -> Drawing:
    """Every character that could break either syntax, in every place a label goes."""
    return Drawing(
        title=NASTY,
        nodes=[
            DrawNode("end", [NASTY, NASTY], "layer", name=NASTY, cluster="c"),
            DrawNode('x|"y"', [NASTY], "folded", body=["  " + NASTY]),
            DrawNode("subgraph", [NASTY], "loss"),
        ],
        edges=[DrawEdge("end", 'x|"y"', "normal", NASTY), DrawEdge('x|"y"', "end", "skip"),
               DrawEdge('x|"y"', "subgraph", "loss", NASTY)],
        clusters=[Cluster("c", NASTY, "shared")],
        legend=[NASTY, NASTY],
    )


@pytest.fixture(scope="module")
def caux():
    return compile_file(ROOT / "specs/caux.mdl")


def dot_svg(text: str) -> str:
    result = subprocess.run(["dot", "-Tsvg"], input=text, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert not result.stderr.strip(), result.stderr
    return result.stdout


# -- DOT ------------------------------------------------------------------------------


def test_dot_structure(caux):
    drawing = build_drawing(caux)
    text = to_dot(drawing)
    assert text.startswith('digraph "caux" {') and "rankdir=TB" in text
    assert text.count("subgraph ") == len(drawing.clusters)
    assert len(re.findall(r" -> ", text)) == len(drawing.edges)
    assert "label=<a, b>" in text
    # inputs first, losses last
    assert '{ rank=min; "x"; }' in text
    assert '{ rank=max; "loss:0"; "loss:1"; "loss:2"; }' in text
    assert "63,286 trainable parameters" in text


@needs_dot
@pytest.mark.parametrize("fold", [False, True])
def test_dot_parses_and_lays_out(caux, write_spec, fold):
    for program in (caux, compile_file(write_spec(RESNET))):
        svg = dot_svg(to_dot(build_drawing(program, fold=fold)))
        assert "<svg" in svg


@needs_dot
def test_dot_escapes_every_label():
    text = to_dot(nasty_drawing())
    svg = dot_svg(text)
    # the text comes back whole: Graphviz read the entities as the characters
    assert svg.count("a&quot;b|c&lt;d&gt;e[f]{g}(h)#i;&amp;j\\k end") >= 6
    assert '<g id="clust1" class="cluster">' in svg


def test_dot_escapes_without_graphviz():
    text = to_dot(nasty_drawing())
    labels = re.findall(r"label=<(.*?)>[,;\]]", text)
    assert labels
    for label in labels:
        text_only = re.sub(r"</?(b|font|br|table|tr|td)\b[^<>]*>", "", label)
        assert not re.search(r'[<>"]', text_only), text_only
        assert not re.search(r"&(?!(quot|lt|gt|amp|#x27|#160);)", text_only), text_only
    assert "&lt;d&gt;" in text and "&amp;j" in text and "&quot;" in text


def test_a_residual_skip_edge_is_dashed(write_spec):
    text = to_dot(build_drawing(compile_file(write_spec(RESNET))))
    assert len(re.findall(r"-> \"[^\"]+\" \[style=dashed", text)) == 10


# -- Mermaid --------------------------------------------------------------------------

NODE = re.compile(r"^\s*(n\d+|legend)(\[/?\").*(\"/?\]):::\w+$")
EDGE = re.compile(r"^\s*n\d+ (-->|-\.->|==>)(\|\"[^\"]*\"\|)? n\d+$")


def test_mermaid_counts(caux):
    drawing = build_drawing(caux)
    text = to_mermaid(drawing)
    lines = text.splitlines()
    assert lines[:4] == ["---", "title: caux", "---", "flowchart TB"]
    nodes = [line for line in lines if NODE.match(line)]
    edges = [line for line in lines if EDGE.match(line)]
    assert len(nodes) == len(drawing.nodes) + 1 == 25 + 1  # and the legend
    assert len(edges) == len(drawing.edges) == 25
    assert sum(1 for line in lines if line.strip().startswith("subgraph ")) == 3
    assert sum(1 for line in lines if line.strip() == "end") == 3
    assert sum(1 for line in edges if '|"a, b"|' in line) == 1
    assert sum(1 for line in edges if "==>" in line) == 3


def test_mermaid_folded_and_skips(write_spec):
    program = compile_file(write_spec(RESNET))
    assert to_mermaid(build_drawing(program)).count(" -.-> ") == 10
    folded = to_mermaid(build_drawing(program, fold=True))
    assert " -.-> " not in folded
    assert "repeat ×10" in folded and "#160;#160;conv2d(32, k=3, pad=1)" in folded


def test_mermaid_escapes_every_label():
    text = to_mermaid(nasty_drawing())
    for line in text.splitlines()[4:]:
        if line.strip().startswith(("classDef", "style")):
            continue
        inside = re.findall(r'"(.*?)"', line)
        for label in inside:
            # nothing but entity codes may use # ; & < >, and no quote or pipe survives inside
            assert not re.search(r"[<>|&\\]", label.replace("<br/>", "")), label
            assert re.sub(r"#(\d+|quot);", "", label).count("#") == 0, label
        # ids are generated: nothing of the nasty ids is left outside the labels
        assert "x|" not in re.sub(r'"(.*?)"', "", line)
    assert "title: abcdefghijk end" in text


# -- render() -------------------------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_every_shipped_spec_renders_to_text(spec, tmp_path):
    program = compile_file(spec)
    for fold in (False, True):
        dot = render(program, tmp_path / "graph.dot", fold=fold).read_text()
        mmd = render(program, tmp_path / "graph.mmd", fold=fold).read_text()
        assert dot.startswith("digraph") and dot.rstrip().endswith("}")
        assert "flowchart TB" in mmd


@needs_dot
def test_render_images(caux, tmp_path):
    svg = render(caux, tmp_path / "caux.svg").read_text()
    assert "<svg" in svg and ">extract<" in svg and ">shared, 2 uses<" in svg
    png = render(caux, tmp_path / "CAUX.PNG").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


def test_missing_dot_is_a_minispec_error(caux, tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: None)
    with pytest.raises(MinispecError) as caught:
        render(caux, tmp_path / "caux.svg")
    assert "Graphviz's `dot` program was not found" in caught.value.message
    assert "apt-get install graphviz" in caught.value.hint and ".mmd" in caught.value.hint
    assert not (tmp_path / "caux.svg").exists()
    # the text formats need no Graphviz
    assert render(caux, tmp_path / "caux.dot").exists()
    assert render(caux, tmp_path / "caux.mmd").exists()


@pytest.mark.parametrize("name", ["caux.pdf", "caux", "caux.svg.txt"])
def test_unknown_extension_lists_the_formats(caux, tmp_path, name):
    with pytest.raises(MinispecError) as caught:
        render(caux, tmp_path / name)
    assert "unknown format" in caught.value.message
    for ext in (".dot", ".mmd", ".svg", ".png"):
        assert ext in caught.value.hint


def test_unwritable_path_is_a_minispec_error(caux, tmp_path):
    with pytest.raises(MinispecError, match="cannot write"):
        render(caux, tmp_path / "missing" / "caux.dot")

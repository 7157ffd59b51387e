"""Every ```mdl example in docs/ parses; the complete ones compile."""

import re

import pytest

from minispec.compiler import compile_file
from minispec.lang.parser import parse
from tests.conftest import ROOT

EXAMPLES = [
    (doc.name, index, block)
    for doc in sorted((ROOT / "docs").glob("*.md"))
    for index, block in enumerate(re.findall(r"```mdl\n(.*?)```", doc.read_text(), re.S))
]


def test_the_language_reference_has_examples():
    assert sum(1 for doc, _, _ in EXAMPLES if doc == "language.md") >= 8


@pytest.mark.parametrize("doc,index,text", EXAMPLES, ids=[f"{d}-{i}" for d, i, _ in EXAMPLES])
def test_example_parses_and_complete_ones_compile(doc, index, text, tmp_path):
    parse(text, f"{doc}#{index}")
    complete = all(re.search(rf"^\s*{word}\b", text, re.M) for word in ("data", "net", "loss"))
    if complete and "include" not in text:
        path = tmp_path / "example.mdl"
        path.write_text(text)
        assert compile_file(path).nodes

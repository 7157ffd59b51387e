"""Nothing the user writes acts as code or as a terminal command (issue 16):
emitted Python and .mdl quote what comes from the user, and error excerpts
show control characters as escapes."""

import ast
import importlib.util
import sys

import pytest
from click.testing import CliRunner

from minispec.cli import main
from minispec.compiler import compile_file
from minispec.errors import MinispecError, Span, visible
from minispec.lang.files import read
from minispec.lang.parser import parse
from minispec.lang.printer import format_merged

BODY = """
data disk(train=20, test=20)
net { out = x | linear(4) | relu | linear(2) }
loss { out cross_entropy(target) }
"""
HOSTILE_STEMS = [
    'evil\nopen("marker", "w").close()\n#',
    'evil"""\nopen("marker", "w").close()\n"""',
    'evil\r\nopen("marker", "w").close()\r\n#',
    'evil\u2028open("marker", "w").close()\\',
]


@pytest.mark.parametrize("stem", HOSTILE_STEMS, ids=range(len(HOSTILE_STEMS)))
def test_importing_code_emitted_from_a_hostile_file_name_runs_nothing(stem, tmp_path, monkeypatch):
    from minispec.backends.torch_nn import emit_python

    monkeypatch.chdir(tmp_path)
    spec = tmp_path / f"{stem}.mdl"
    spec.write_text(BODY)
    source = emit_python(compile_file(spec))
    tree = ast.parse(source)
    # Only the three imports and the class: no statement came from the file name.
    assert [type(node).__name__ for node in tree.body] == ["Import", "Import", "Import", "ClassDef"]
    assert all(line.isprintable() for line in source.splitlines())
    module_path = tmp_path / "emitted.py"
    module_path.write_text(source)
    spec_loader = importlib.util.spec_from_file_location("emitted_hostile", module_path)
    module = importlib.util.module_from_spec(spec_loader)
    spec_loader.loader.exec_module(module)
    sys.modules.pop("emitted_hostile", None)
    assert not (tmp_path / "marker").exists()
    (cls,) = [v for v in vars(module).values() if isinstance(v, type) and v.__module__ == "emitted_hostile"]
    assert stem.splitlines()[0] in cls.__doc__ or "evil" in cls.__doc__


@pytest.mark.parametrize("stem", HOSTILE_STEMS, ids=range(len(HOSTILE_STEMS)))
def test_emitted_mdl_from_a_hostile_file_name_is_one_spec_name(stem, tmp_path):
    spec = tmp_path / f"{stem}.mdl"
    spec.write_text(BODY)
    text = format_merged(read(spec), spec.stem)
    items = parse(text, "copy.mdl").items
    assert [type(item).__name__ for item in items] == ["SpecDecl", "DataDecl", "NetDef", "LossDef"]
    assert items[0].name.startswith("evil")


def test_cli_emit_torch_from_a_hostile_file_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / f"{HOSTILE_STEMS[0]}.mdl"
    spec.write_text(BODY)
    result = CliRunner().invoke(main, ["compile", str(spec), "--emit", "torch"])
    assert result.exit_code == 0, result.output
    assert [type(n).__name__ for n in ast.parse(result.output).body][-1] == "ClassDef"
    assert "\nopen(" not in result.output


def test_error_excerpts_show_control_characters_as_escapes(write_spec):
    path = write_spec('spec a\ndata disk()\nnet { out = x | linear(2) \x1b[2J\x1b]0;pwned\x07 }\n')
    with pytest.raises(MinispecError) as caught:
        compile_file(path)
    text = caught.value.render()
    assert "\x1b" not in text and "\x07" not in text
    assert all(line.isprintable() for line in text.splitlines())
    lines = text.splitlines()
    assert lines[0].startswith(f"{path}:3:27: error: unexpected `\\x1b`")
    assert lines[1] == "    net { out = x | linear(2) \\x1b[2J\\x1b]0;pwned\\x07 }"
    assert lines[2] == "    " + " " * 26 + "^" * 4  # under the whole escape


def test_a_hostile_file_name_in_an_error_is_printed_visibly(tmp_path):
    spec = tmp_path / "a\x1b[2Jb.mdl"
    spec.write_text("spec a\nnet {")
    result = CliRunner().invoke(main, ["check", str(spec)])
    assert result.exit_code == 2
    assert "\x1b" not in result.output and "a\\x1b[2Jb.mdl:" in result.output


def test_visible_keeps_printable_text_and_escapes_the_rest():
    assert visible("caux é ✓") == "caux é ✓"
    assert visible("a\x1bb\u2028c\x85d\x00") == "a\\x1bb\\u2028c\\x85d\\x00"
    span = Span(file="--set x", line=1, column=1, end_line=1, end_column=2)
    assert "\x1b" not in MinispecError("bad \x1b[31m", span).render({"--set x": "\x1b"})

"""What the package ships besides code: the grammar and the spec library, found
through minispec.resources; includes that fall back on the shipped library;
`minispec examples`; `python -m minispec`. The built wheel itself is installed
and exercised by .ci/check-wheel."""

import os
import subprocess
import sys
import tomllib

import pytest

from minispec.compiler import compile_file
from minispec.errors import MinispecError
from minispec.lang.files import read
from minispec.resources import copy_examples, grammar_text, spec_library
from tests.conftest import ROOT, SPECS


def test_every_code_package_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "minispec").rglob("__init__.py")}
    assert found - listed == set(), "add these packages to [tool.setuptools] packages in pyproject.toml"


def test_the_grammar_and_the_library_are_the_repository_files():
    assert grammar_text() == (ROOT / "grammar" / "minispec.lark").read_text(encoding="utf-8")
    shipped = sorted(p.relative_to(spec_library()) for p in spec_library().rglob("*.mdl"))
    assert shipped == sorted(p.relative_to(ROOT / "specs") for p in (ROOT / "specs").rglob("*.mdl"))
    assert (spec_library() / "lib" / "pairs.mdl").is_file()


def test_an_include_not_beside_the_spec_comes_from_the_shipped_library(write_spec):
    spec = write_spec('include "lib/pairs.mdl"\nspec mine\n'
                      'net {\n  a = x[0] | features | flatten\n  b = x[1] | features | flatten\n'
                      '  out = concat(a, b) | head\n}\n'
                      'loss { out cross_entropy(target) }\n', "elsewhere/mine.mdl")
    program = compile_file(spec)
    assert program.name == "mine"
    assert str((spec_library() / "lib" / "pairs.mdl").resolve()) in read(spec).files


def test_a_shipped_spec_that_includes_the_library_can_itself_be_included(write_spec):
    spec = write_spec('include "saux.mdl"\nspec my_saux\n', "mine.mdl")
    assert compile_file(spec, ["epochs=1"]).name == "my_saux"


def test_a_file_beside_the_spec_wins_over_the_shipped_one(write_spec):
    write_spec("block head { linear(7) | relu | linear(2) }\n", "lib/pairs.mdl")
    spec = write_spec('include "lib/pairs.mdl"\nspec mine\ndata disk(train=10, test=10)\n'
                      'net { out = x | head }\nloss { out cross_entropy(target) }\n', "mine.mdl")
    program = compile_file(spec)
    assert any(node.shape == [7] for node in program.nodes)


def test_an_include_found_nowhere_says_where_it_looked(write_spec):
    spec = write_spec('include "lib/nothing.mdl"\nspec mine\n', "mine.mdl")
    with pytest.raises(MinispecError, match="not found") as error:
        compile_file(spec)
    assert "shipped library" in error.value.hint


def test_examples_copies_every_shipped_spec_and_they_compile(tmp_path):
    copied = copy_examples(tmp_path / "ex")
    assert sorted(p.name for p in copied if p.parent == tmp_path / "ex") == sorted(p.name for p in SPECS)
    assert compile_file(tmp_path / "ex" / "saux.mdl").name == "saux"
    with pytest.raises(MinispecError, match="already exists"):
        copy_examples(tmp_path / "ex")


def test_python_dash_m_minispec_prints_the_version():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "minispec", "--version"], capture_output=True, text=True,
                            env=env, cwd=ROOT.parent, check=True)
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert result.stdout.strip() == f"minispec, version {version}"

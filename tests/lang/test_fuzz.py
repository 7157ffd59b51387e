"""Fuzzed front end: mutated shipped specs and random text either compile or
give one located `file:line:col: error:` with exit status 2; never a traceback."""

import re

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minispec.cli import main
from tests.conftest import SPECS

TOKEN = re.compile(r'"[^"\n]*"|[A-Za-z_][A-Za-z0-9_]*|[+-]?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\S')
NUMBERS = ["0", "-1", "-7", "99999999999", "1e308", "0.0", "-0.5", "3.7", "1000000"]
SOURCES = {path.name: path.read_text() for path in SPECS}
LOCATED = re.compile(r"^(.+?):(\d+):(\d+): error: .+")


def mutate(text: str, data) -> str:
    tokens = TOKEN.findall(text)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        if not tokens:
            break
        i = data.draw(st.integers(0, len(tokens) - 1), label="position")
        kind = data.draw(st.sampled_from(["delete", "duplicate", "swap", "number", "unicode", "replace"]))
        if kind == "delete":
            del tokens[i]
        elif kind == "duplicate":
            tokens.insert(i, tokens[i])
        elif kind == "swap":
            j = data.draw(st.integers(0, len(tokens) - 1), label="other")
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif kind == "number":
            numbers = [k for k, t in enumerate(tokens) if re.fullmatch(r"[+-]?\d.*", t)]
            if numbers:
                tokens[data.draw(st.sampled_from(numbers))] = data.draw(st.sampled_from(NUMBERS))
        elif kind == "unicode":
            tokens[i] = data.draw(st.text(min_size=1, max_size=4))
        else:
            tokens[i] = data.draw(st.sampled_from(tokens))
    return " ".join(tokens)


def assert_clean(result, path):
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 2), result.output
    if result.exit_code == 2:
        first = result.output.splitlines()[0]
        match = LOCATED.match(first)
        assert match and (match.group(1) == str(path) or match.group(1).startswith("--set ")), result.output


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(sorted(SOURCES)), st.sampled_from(["check", "compile", "graph"]), st.data())
def test_mutated_specs_compile_or_fail_cleanly(name, command, data):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        (Path(folder) / "lib").mkdir()
        for lib in ("pairs.mdl", "single.mdl", "ladder.mdl"):
            (Path(folder) / "lib" / lib).write_text((SPECS[0].parent / "lib" / lib).read_text())
        for other, text in SOURCES.items():
            (Path(folder) / other).write_text(text)
        path.write_text(mutate(SOURCES[name], data))
        args = {"check": ["check", str(path)], "compile": ["compile", str(path), "--emit", "ir"],
                "graph": ["graph", str(path), "-o", str(Path(folder) / "g.dot")]}[command]
        assert_clean(CliRunner().invoke(main, args), path)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(["disk.mdl", "disk_onehot.mdl", "disk_deep.mdl", "disk_sigmoid.mdl"]), st.data())
def test_mutated_specs_run_or_fail_cleanly(name, data):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        (Path(folder) / "disk.mdl").write_text(SOURCES["disk.mdl"])
        path.write_text(mutate(SOURCES[name], data))
        args = ["run", str(path), "--trials", "1", "--epochs", "1", "--set", "data.train=50", "--set", "batch=10",
                "--out", str(Path(folder) / "run")]
        result = CliRunner().invoke(main, args)
        assert_clean(result, path)


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_random_text_fails_cleanly(text):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "random.mdl"
        path.write_text(text, encoding="utf-8")
        assert_clean(CliRunner().invoke(main, ["check", str(path)]), path)

"""minispec's own fuzzer of the front end: byte- and token-level mutants of
every shipped spec, checked in-process against one invariant.

Invariant: each input ends within BUDGET_S seconds, with a Program or with a
`MinispecError` that is located (a span whose excerpt is the line at fault);
never another exception. A sample of the mutants that compile also goes
through `graph` (dot and mermaid text), `compile --emit torch|mdl|ir`, and two
properties: the emitted .mdl compiles to the same IR, and `--emit ir` loads
back equal.

The mutations (MUTATIONS) are the classes an outside fuzzer used against us
(issue 15): token deletion, duplication and swaps, random unicode, huge and
negative numbers, deep nesting, long lines, NUL bytes, invalid UTF-8, CRLF and
CR-only line ends, a BOM, plus hostile include names and keywords in odd places.

    python -m tests.fuzz.fuzzer --count 20000 --seed 7     # `make fuzz`

Inputs that break the invariant are written to tests/fuzz/regressions/, which
tests/fuzz/test_fuzz.py replays on every run.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import re
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from minispec.errors import MinispecError, normalize_newlines
from minispec.ir.model import without_spans

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs").glob("*.mdl")) + sorted((ROOT / "specs" / "lib").glob("*.mdl"))
REGRESSIONS = Path(__file__).resolve().parent / "regressions"
BUDGET_S = 2.0

TOKEN = re.compile(rb'"[^"\n]*"|[A-Za-z_][A-Za-z0-9_]*|[+-]?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\s+|.', re.S)
NUMBERS = [b"0", b"-1", b"-7", b"1e999", b"-1e999", b"1e-400", b"1e-320", b"2.5e-308", b"1e308", b"99999999999",
           b"9223372036854775808", b"9" * 5000, b"0.0", b"-0.5", b"3.7", b"1000000", b"100000000", b"00000000001"]
KEYWORDS = [b"spec", b"param", b"include", b"data", b"block", b"net", b"instance", b"loss", b"train", b"weight",
            b"repeat", b"residual", b"convolutionize", b"true", b"false", b"x", b"out", b"|", b"=", b"{", b"}",
            b"(", b")", b"[", b"]", b",", b"concat", b"add", b"linear", b"conv2d", b"relu", b"flatten"]
UNICODE = ["\u00e9", "\u2028", "\u2029", "\x85", "\ufeff", "\u202e", "\u0301", "\U0001f600", "\x1b[2J", "\x0b",
           "\x0c", "\t", "\u3000", "\ud7ff", "\uffff"]
INCLUDE_NAMES = [b"a" * 5000 + b".mdl", b"lib/" + b"b" * 300 + b".mdl", b"a\x00b.mdl", b"", b"/etc/passwd",
                 b"../../../../etc/passwd", b"lib", b".", b"lib/pairs.mdl", b"\xff\xfe.mdl", b"con", b"a\x1b.mdl"]


def _tokens(data: bytes) -> list[bytes]:
    return TOKEN.findall(data)


def _m_delete(rng, tokens):
    del tokens[rng.randrange(len(tokens))]


def _m_duplicate(rng, tokens):
    i = rng.randrange(len(tokens))
    tokens.insert(i, tokens[i])


def _m_swap(rng, tokens):
    i, j = rng.randrange(len(tokens)), rng.randrange(len(tokens))
    tokens[i], tokens[j] = tokens[j], tokens[i]


def _m_number(rng, tokens):
    numbers = [k for k, t in enumerate(tokens) if re.fullmatch(rb"[+-]?\d.*", t)]
    tokens[rng.choice(numbers) if numbers else rng.randrange(len(tokens))] = rng.choice(NUMBERS)


def _m_unicode(rng, tokens):
    text = "".join(rng.choice(UNICODE) if rng.random() < 0.5 else chr(rng.randrange(0x20, 0x3000))
                   for _ in range(rng.randint(1, 4)))
    tokens.insert(rng.randrange(len(tokens) + 1), text.encode("utf-8", "surrogatepass"))


def _m_keyword(rng, tokens):
    tokens.insert(rng.randrange(len(tokens) + 1), b" " + rng.choice(KEYWORDS) + b" ")


def _m_nesting(rng, tokens):
    depth = rng.choice([50, 199, 201, 1000, 5000])
    opener, closer = rng.choice([(b"(", b")"), (b"{", b"}"), (b"[", b"]"), (b"residual {", b"}"),
                                 (b"repeat 2 {", b"}")])
    i = rng.randrange(len(tokens) + 1)
    tokens[i:i] = [opener * depth, b"x", closer * depth * rng.randint(0, 1)]


def _m_long_line(rng, tokens):
    i = rng.randrange(len(tokens))
    token = tokens[i] if len(tokens[i]) < 100 else b"relu"
    tokens.insert(i, (token + b" ") * rng.choice([1000, 5000]))


def _m_nul(rng, tokens):
    tokens.insert(rng.randrange(len(tokens) + 1), b"\x00")


def _m_invalid_utf8(rng, tokens):
    tokens.insert(rng.randrange(len(tokens) + 1), rng.choice([b"\xff", b"\xc3", b"\xe2\x80", b"\xed\xa0\x80", b"\x80"]))


def _m_include(rng, tokens):
    tokens.insert(rng.randrange(len(tokens) + 1), b'\ninclude "' + rng.choice(INCLUDE_NAMES) + b'"\n')


def _m_chain(rng, tokens):
    """Many statements or block calls: the size limits must act before the work."""
    # Legal sizes (the node limit, 20,000, is tested in tests/lang/test_compile_time.py): a 12,000-statement
    # net that compiles through took 2.3 s of CPU on the loaded 2-core machine, past BUDGET_S on its own.
    n = rng.choice([100, 2000, 5000])
    body = b"".join(b" c%d = x | relu\n" % k for k in range(n)) if rng.random() < 0.5 else \
        b"".join(b"block d%d { d%d | d%d }\n" % (k + 1, k, k) for k in range(rng.randint(10, 40)))
    tokens.insert(rng.randrange(len(tokens) + 1), body)


MUTATIONS = {
    "delete": _m_delete, "duplicate": _m_duplicate, "swap": _m_swap, "number": _m_number,
    "unicode": _m_unicode, "keyword": _m_keyword, "nesting": _m_nesting, "long_line": _m_long_line,
    "nul": _m_nul, "invalid_utf8": _m_invalid_utf8, "include": _m_include, "chain": _m_chain,
}
# Whole-file mutations, applied after the token ones.
LINE_ENDS = {"crlf": lambda d: d.replace(b"\n", b"\r\n"), "cr_only": lambda d: d.replace(b"\n", b"\r"),
             "bom": lambda d: b"\xef\xbb\xbf" + d}


def mutate(source: bytes, rng: random.Random) -> tuple[bytes, list[str]]:
    """One mutant of `source`: 1 to 3 token mutations, sometimes a whole-file one."""
    tokens = _tokens(source) or [b" "]
    applied = []
    for _ in range(rng.randint(1, 3)):
        name = rng.choice(sorted(MUTATIONS))
        MUTATIONS[name](rng, tokens)
        applied.append(name)
        if not tokens:
            tokens = [b" "]
    data = b"".join(tokens)
    if rng.random() < 0.2:
        name = rng.choice(sorted(LINE_ENDS))
        data = LINE_ENDS[name](data)
        applied.append(name)
    return data, applied


class _OverBudget(BaseException):
    """Raised by the timer inside an input that runs past its budget."""


@dataclass
class Outcome:
    kind: str  # "ok", "error" (located MinispecError) or a failure: "timeout", "crash", "unlocated", "excerpt"
    detail: str = ""
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.kind not in ("ok", "error")


def _on_alarm(signum, frame):
    raise _OverBudget()


def check_input(path: Path, data: bytes, deep: bool = False, budget: float = BUDGET_S) -> Outcome:
    """Write `data` to `path`, compile it in-process within `budget` seconds,
    and check the invariant; with `deep`, also graph, emit and the properties."""
    from minispec.compiler import compile_file

    path.write_bytes(data)
    # The budget is CPU time of this process: eight people share two cores here.
    previous = signal.signal(signal.SIGPROF, _on_alarm)
    signal.setitimer(signal.ITIMER_PROF, budget)
    start = time.process_time()
    try:
        program = compile_file(path)
        if deep:
            _deep_checks(program, path)
        outcome = Outcome("ok")
    except _OverBudget:
        outcome = Outcome("timeout", f"over {budget} s")
    except MinispecError as error:
        signal.setitimer(signal.ITIMER_PROF, 0)
        outcome = _check_located(error, path, data)
    except RecursionError:
        outcome = Outcome("crash", "RecursionError")
    except Exception as error:  # the invariant says: never
        outcome = Outcome("crash", f"{type(error).__name__}: {str(error)[:200]}")
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)
    outcome.seconds = time.process_time() - start
    return outcome


def _check_located(error: MinispecError, path: Path, data: bytes) -> Outcome:
    if error.span is None:
        return Outcome("unlocated", error.message[:200])
    try:
        lines = error.render().splitlines()
    except Exception as failure:  # noqa: BLE001 - rendering must never fail either
        return Outcome("crash", f"render: {type(failure).__name__}: {failure}")
    if not lines[0].startswith(f"{error.span}: error: "):
        return Outcome("unlocated", lines[0][:200])
    if error.span.file == str(path):
        text = normalize_newlines(data.decode("utf-8", errors="replace"))
        source_lines = text.split("\n")
        if not 1 <= error.span.line <= len(source_lines):
            return Outcome("excerpt", f"line {error.span.line} of {len(source_lines)}")
        expected = source_lines[error.span.line - 1].rstrip(" \t")
        if len(lines) < 3:
            return Outcome("excerpt", "no excerpt")
        if expected.isprintable() and "\t" not in expected and lines[1] != "    " + expected:
            return Outcome("excerpt", f"excerpt {lines[1][:80]!r} is not line {error.span.line}")
    return Outcome("error")


def _deep_checks(program, path: Path) -> None:
    """`graph` and `compile` on a mutant that compiles, and two properties."""
    from minispec.backends.torch_nn.emit import emit_python
    from minispec.compiler import compile_file
    from minispec.ir.model import Program
    from minispec.lang.files import read
    from minispec.lang.printer import format_merged
    from minispec.render.dot import to_dot
    from minispec.render.drawing import build_drawing
    from minispec.render.mermaid import to_mermaid

    drawing = build_drawing(program)
    to_dot(drawing), to_mermaid(drawing)
    compile(emit_python(program), "<emitted>", "exec")
    if Program.model_validate_json(program.model_dump_json()) != program:
        raise AssertionError("--emit ir does not load back equal")
    copy = path.with_name("roundtrip.mdl")
    copy.write_text(format_merged(read(path), path.stem), encoding="utf-8")
    if strip_places(compile_file(copy)) != strip_places(program):
        raise AssertionError("--emit mdl does not compile to the same IR")


def strip_places(program) -> dict:
    """The IR without source positions and file names."""
    return without_spans(program.model_dump(exclude={"source", "name"}))


@dataclass
class Report:
    inputs: int = 0
    outcomes: Counter = field(default_factory=Counter)
    classes: Counter = field(default_factory=Counter)
    failures: list[tuple[str, Outcome, list[str], bytes]] = field(default_factory=list)
    deep: int = 0
    slowest: float = 0.0
    seconds: float = 0.0


def workspace() -> Path:
    """A folder holding copies of the shipped specs and lib/, so includes resolve."""
    folder = Path(tempfile.mkdtemp(prefix="minispec-fuzz-"))
    shutil.copytree(ROOT / "specs", folder / "specs")
    return folder / "specs"


def fuzz(count: int, seed: int, deep_every: int = 10, budget: float = BUDGET_S) -> Report:
    rng = random.Random(seed)
    sources = [(spec.name, spec.read_bytes()) for spec in SPECS]
    folder = workspace()
    report = Report()
    start = time.perf_counter()
    try:
        for index in range(count):
            name, source = sources[index % len(sources)]
            data, applied = mutate(source, rng)
            outcome = check_input(folder / f"fuzz_{name}", data, deep=index % deep_every == 0, budget=budget)
            report.inputs += 1
            report.outcomes[outcome.kind] += 1
            report.classes.update(applied)
            report.deep += index % deep_every == 0 and outcome.kind == "ok"
            report.slowest = max(report.slowest, outcome.seconds)
            if outcome.failed:
                report.failures.append((name, outcome, applied, data))
    finally:
        shutil.rmtree(folder.parent, ignore_errors=True)
    report.seconds = time.perf_counter() - start
    return report


def save_regression(data: bytes, origin: str) -> Path:
    """Keep a failing input under tests/fuzz/regressions/, named by its hash."""
    REGRESSIONS.mkdir(parents=True, exist_ok=True)
    path = REGRESSIONS / f"{Path(origin).stem}-{hashlib.sha256(data).hexdigest()[:12]}.mdl"
    path.write_bytes(data)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", action="store_true", help="write failing inputs to tests/fuzz/regressions/")
    args = parser.parse_args(argv)
    report = fuzz(args.count, args.seed)
    print(f"{report.inputs} inputs in {report.seconds:.1f} s (slowest {report.slowest:.2f} s); "
          f"outcomes {dict(report.outcomes)}; deep checks on {report.deep} compiling mutants")
    print(f"mutation classes: {dict(sorted(report.classes.items()))}")
    for name, outcome, applied, data in report.failures:
        where = save_regression(data, name) if args.save else ""
        print(f"FAIL {outcome.kind} {name} {applied}: {outcome.detail} {where}")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())

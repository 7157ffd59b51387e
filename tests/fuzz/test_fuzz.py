"""The fuzzer in CI: a fixed seed, 1,000 mutants of the shipped specs, in-process,
each within its CPU budget; every regression kept under regressions/ replayed;
and the properties beyond parsing on mutants that compile."""

import random
from pathlib import Path

import pytest

from minispec.compiler import compile_file
from minispec.errors import MinispecError
from tests.fuzz import fuzzer

REGRESSIONS = sorted(fuzzer.REGRESSIONS.glob("*.mdl"))


def test_a_fixed_seed_of_a_thousand_mutants_keeps_the_invariant():
    report = fuzzer.fuzz(1000, seed=2026)
    assert report.inputs == 1000
    assert set(report.classes) == set(fuzzer.MUTATIONS) | set(fuzzer.LINE_ENDS)
    assert report.outcomes["ok"] > 50 and report.outcomes["error"] > 500  # both paths exercised
    assert report.deep > 5
    failures = [f"{kind.kind} {name} {applied}: {kind.detail}" for name, kind, applied, _ in report.failures]
    assert not failures, "\n".join(failures)


@pytest.fixture(scope="module")
def workspace():
    folder = fuzzer.workspace()
    yield folder
    import shutil

    shutil.rmtree(folder.parent, ignore_errors=True)


@pytest.mark.parametrize("path", REGRESSIONS, ids=[p.name for p in REGRESSIONS])
def test_every_input_that_ever_failed_keeps_the_invariant(path, workspace):
    outcome = fuzzer.check_input(workspace / "regression.mdl", path.read_bytes(), deep=True)
    assert not outcome.failed, f"{outcome.kind}: {outcome.detail}"


def test_regressions_are_kept():
    assert len(REGRESSIONS) >= 10


def compiling_mutants(count: int, seed: int, folder: Path):
    rng = random.Random(seed)
    for index in range(count):
        spec = fuzzer.SPECS[index % len(fuzzer.SPECS)]
        data, _ = fuzzer.mutate(spec.read_bytes(), rng)
        path = folder / f"m{index}_{spec.name}"
        path.write_bytes(data)
        try:
            yield path, compile_file(path)
        except MinispecError:
            continue


def test_emitted_mdl_and_ir_of_compiling_mutants_round_trip(workspace):
    checked = 0
    for path, program in compiling_mutants(150, seed=5, folder=workspace):
        fuzzer._deep_checks(program, path)
        checked += 1
    assert checked >= 15


def test_what_check_accepts_check_smoke_builds(workspace):
    """A sample of compiling mutants small enough to build here (the resource
    guard for large ones is tested with the run-time guards)."""
    from minispec.backends.smoke import smoke_test

    built = 0
    for _, program in compiling_mutants(150, seed=9, folder=workspace):
        if program.total_params > 200_000 or built >= 12:
            continue
        try:
            smoke_test(program)
        except MinispecError as error:  # a non-finite loss is a located, legitimate answer
            assert error.span is not None
        built += 1
    assert built >= 5

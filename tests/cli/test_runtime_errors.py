"""Run-time mistakes of a user, through the commands: one clean message, exit 2 (issues 15, 16)."""

from pathlib import Path

from click.testing import CliRunner

from minispec.cli import main

ROOT = Path(__file__).resolve().parents[2]


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result


def test_check_refuses_more_pairs_than_the_embedded_digits_hold():
    result = invoke("check", ROOT / "specs" / "sn.mdl", "--set", "data.train=5000")
    assert result.exit_code == 2 and "at most 1250" in result.output and "--data-root" in result.output
    assert invoke("check", ROOT / "specs" / "sn.mdl", "--set", "data.train=1250").exit_code == 0


HUGE = """\
spec huge
data mnist(train=100, test=100, flatten=true)
net { out = x | linear(100000000) | relu | linear(10) }
loss { out cross_entropy(target) }
train { optimizer sgd(lr=0.1) batch 4 epochs 1 trials 1 }
"""


def test_every_command_that_builds_a_model_refuses_what_cannot_fit(tmp_path):
    spec = tmp_path / "huge.mdl"
    spec.write_text(HUGE)
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"")
    for args in (["check", spec, "--smoke"], ["verify", spec], ["eval", spec, "--weights", weights],
                 ["run", spec, "--out", tmp_path / "run"], ["compare", spec, "--runs", tmp_path / "runs"]):
        result = invoke(*args)
        assert result.exit_code == 2 and "needs about" in result.output and "TiB" in result.output, (args, result.output)
    assert not (tmp_path / "run" / "trials").exists()


def test_the_issue_16_run_is_refused_by_its_estimate(tmp_path):
    """data.train=2e7 on the disk net peaks near 1.8 GB: no longer admitted under 400 MiB."""
    result = invoke("run", ROOT / "specs" / "disk.mdl", "--set", "data.train=20000000", "--max-memory", "400MiB",
                    "--out", tmp_path / "run")
    assert result.exit_code == 2 and "needs about 1." in result.output and "GiB" in result.output


def test_max_memory_must_be_a_finite_size(tmp_path):
    for text in ("inf", "nan", "0", "-5G"):
        result = invoke("run", ROOT / "specs" / "disk.mdl", "--max-memory", text, "--out", tmp_path / "run")
        assert result.exit_code == 2 and "memory size" in result.output, result.output


def _spec(tmp_path):
    spec = tmp_path / "tiny.mdl"
    spec.write_text((ROOT / "specs" / "disk.mdl").read_text().replace("epochs 200", "epochs 1")
                    .replace("trials 10", "trials 1"))
    return spec


def test_bad_out_folders_are_refused_cleanly(tmp_path, monkeypatch):
    spec = _spec(tmp_path)
    monkeypatch.chdir(tmp_path)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    cases = {
        "": "--out is empty",
        str(a_file): "is a file",
        str(a_file / "run"): "not a folder",
        "/proc/minispec-run": "under /proc",
        "x" * 300: "longer than the 255 bytes",
        "/".join(["y" * 200] * 25): "too long",
    }
    for out, expected in cases.items():
        result = invoke("run", spec, "--out", out)
        assert result.exit_code == 2 and expected in result.output, (out[:30], result.output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt", "tiny.mdl"]  # nothing written


def test_outputs_of_compile_and_graph_go_into_new_folders_or_fail_cleanly(tmp_path):
    spec = _spec(tmp_path)
    assert invoke("compile", spec, "-o", tmp_path / "new" / "deep" / "ir.json").exit_code == 0
    assert (tmp_path / "new" / "deep" / "ir.json").read_text().startswith("{")
    assert invoke("graph", spec, "-o", tmp_path / "other" / "g.mmd").exit_code == 0
    assert (tmp_path / "other" / "g.mmd").stat().st_size > 0
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    for command, name in (("compile", "ir.json"), ("graph", "g.mmd")):
        result = invoke(command, spec, "-o", blocker / name)
        assert result.exit_code == 2 and "-o" in result.output and "blocker" in result.output, result.output
        result = invoke(command, spec, "-o", "/proc/x/" + name)
        assert result.exit_code == 2 and "under /proc" in result.output, result.output


def test_a_read_only_folder_is_refused_cleanly(tmp_path):
    import os
    import pytest

    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    spec = _spec(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        for args in (["run", spec, "--out", locked / "run"], ["compile", spec, "-o", locked / "ir.json"],
                     ["graph", spec, "-o", locked / "g.mmd"]):
            result = invoke(*args)
            assert result.exit_code == 2 and "permission denied" in result.output, result.output
    finally:
        locked.chmod(0o700)


def test_eval_refuses_weights_of_another_dtype_or_not_finite(tmp_path):
    import torch

    from minispec.backends.checkpoint import save_state
    from minispec.backends.weights import initial_state, trial_generator
    from minispec.compiler import compile_file

    spec = _spec(tmp_path)
    program = compile_file(spec)
    state = initial_state(program, trial_generator(0, 0))
    good = tmp_path / "good.safetensors"
    save_state(good, state)
    assert invoke("eval", spec, "--weights", good).exit_code == 0
    first = next(iter(state))
    for name, change, expected in (
        ("f8", lambda t: t.to(torch.float8_e4m3fn), "float8_e4m3fn"),
        ("f16", lambda t: t.half(), "float16"),
        ("nan", lambda t: t.clone().fill_(float("nan")), "NaN or infinite"),
        ("inf", lambda t: t.clone().fill_(float("inf")), "NaN or infinite"),
    ):
        path = tmp_path / f"{name}.safetensors"
        save_state(path, {**state, first: change(state[first])})
        result = invoke("eval", spec, "--weights", path)
        assert result.exit_code == 2 and expected in result.output and first in result.output, result.output

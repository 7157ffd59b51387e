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

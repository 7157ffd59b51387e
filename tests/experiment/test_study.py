"""Study files: the shipped ones load and run (tiny), a small one end to end, mistakes for people."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from minispec.cli import main
from minispec.compiler import compile_file
from minispec.errors import MinispecError
from minispec.experiment.study import command_line, load_study

ROOT = Path(__file__).resolve().parents[2]
STUDIES = sorted((ROOT / "studies").glob("*.toml"))

SPEC = """\
spec tiny_disk
data disk(train=100, test=100)
net { out = x | linear(8) | tanh | linear(1) }
loss { out mse(target) }
train { optimizer sgd(lr=0.5) batch 20 epochs 2 trials 2 }
"""

STUDY = """\
title = "a tiny study"
runs = "RUNS"

[[table]]
name = "plain"
specs = ["SPEC"]
trials = 2
plot = "PLOT"
decision = "MAPS/map_{spec}.png"

[[table]]
name = "faster"
specs = ["SPEC"]
backend = "scratch"
set = ["lr=1.0"]
trials = 2
epochs = 3
"""


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def test_every_shipped_study_loads_and_its_specs_compile():
    assert len(STUDIES) >= 4
    for path in STUDIES:
        study = load_study(path)
        for table in study.tables:
            for spec in table.specs:
                compile_file(ROOT / spec, table.overrides)


@pytest.mark.parametrize("path", [p for p in STUDIES if not p.stem.endswith("_gpu")], ids=lambda p: p.stem)
def test_every_shipped_study_runs_tiny(path, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    pictures = {p: p.stat().st_mtime_ns for p in (ROOT / "docs").rglob("*.png")}
    result = invoke("study", path, "--tiny", "--runs", tmp_path)
    assert result.exit_code == 0, result.output
    study = load_study(path)
    assert result.output.count("$ minispec compare") + result.output.count("$ minispec sweep") == len(study.tables)
    # tiny draws into the runs root, never into docs/
    assert {p: p.stat().st_mtime_ns for p in (ROOT / "docs").rglob("*.png")} == pictures
    for table in study.tables:
        assert (tmp_path / f"{table.name}.png").is_file()


def test_a_study_runs_once_then_reuses_its_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny_disk.mdl").write_text(SPEC)
    text = STUDY.replace("RUNS", "runs").replace("SPEC", "tiny_disk.mdl").replace("PLOT", "img/plain.png")
    (tmp_path / "s.toml").write_text(text.replace("MAPS", "img"))
    first = invoke("study", "s.toml")
    assert first.exit_code == 0, first.output
    assert "$ minispec compare tiny_disk.mdl --trials 2 --runs runs --plot img/plain.png" in first.output
    assert "--backend scratch --trials 2 --epochs 3 --set lr=1.0" in first.output
    assert (tmp_path / "img/plain.png").is_file() and (tmp_path / "img/map_tiny_disk.png").is_file()
    trials = sorted((tmp_path / "runs").glob("*/trials/*.json"))
    assert len(trials) == 4
    stamps = [p.stat().st_mtime_ns for p in trials]
    again = invoke("study", "s.toml", "--only", "faster")
    assert again.exit_code == 0 and "## plain" not in again.output and "## faster" in again.output
    assert [p.stat().st_mtime_ns for p in trials] == stamps
    # the printed command makes the same table
    line = next(l for l in first.output.splitlines() if l.startswith("$ minispec compare tiny_disk.mdl --backend"))
    table = first.output.split(line)[1].strip().splitlines()[2]
    by_hand = invoke(*line.split()[2:])
    assert by_hand.exit_code == 0 and table.split()[:4] == by_hand.output.strip().splitlines()[2].split()[:4]


def test_a_grid_table_is_a_sweep_run_once_then_reused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny_disk.mdl").write_text(SPEC)
    (tmp_path / "s.toml").write_text('title = "sweep"\nruns = "runs"\n[[table]]\nname = "rates"\n'
                                     'specs = ["tiny_disk.mdl"]\nbackend = "scratch"\ngrid = ["lr=0.1,1.0"]\n'
                                     'trials = 2\nplot = "img/rates.png"\n')
    first = invoke("study", "s.toml")
    assert first.exit_code == 0, first.output
    line = "$ minispec sweep tiny_disk.mdl --backend scratch --grid lr=0.1,1.0 --trials 2 --out runs/rates"
    assert line in first.output and "plot: img/rates.png" in first.output
    assert (tmp_path / "img/rates.png").is_file() and (tmp_path / "runs/rates/sweep.json").is_file()
    trials = sorted((tmp_path / "runs/rates").glob("points/*/trials/*.json"))
    assert len(trials) == 4
    stamps = [p.stat().st_mtime_ns for p in trials]
    again = invoke("study", "s.toml")
    assert again.exit_code == 0 and [p.stat().st_mtime_ns for p in trials] == stamps
    # the printed command makes the same table (into a fresh folder)
    def rows(output):
        return [l.split()[:4] for l in output.splitlines() if l.split()[:1] in (["0.1"], ["1.0"])]

    by_hand = invoke(*line.split()[2:-1], "runs/by_hand")
    assert by_hand.exit_code == 0, by_hand.output
    assert len(rows(first.output)) == 2 and rows(by_hand.output) == rows(first.output)


def test_a_tiny_study_trains_one_epoch_even_where_a_grid_sweeps_epochs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny_disk.mdl").write_text(SPEC)
    (tmp_path / "s.toml").write_text('title = "sweep"\nruns = "runs"\n[[table]]\nname = "length"\n'
                                     'specs = ["tiny_disk.mdl"]\ngrid = ["epochs=3,5", "lr=0.1,1.0"]\n')
    result = invoke("study", "s.toml", "--tiny")
    assert result.exit_code == 0, result.output
    records = sorted((tmp_path / "runs/tiny/length").glob("points/*/trials/*.json"))
    assert len(records) == 2  # epochs=1 x lr=0.1,1.0, one trial each
    assert all('"epochs": 1,' in path.read_text() for path in records)


@pytest.mark.parametrize("text, message", [
    ('title = "x"\n[[table]]\nname = "a"\n', "specs"),
    ('title = "x"\n[[table]]\nname = "a"\nspecs = ["s.mdl"]\ntrails = 3\n', "trails"),
    ('title = "x"\n[[table]\n', "not a valid TOML"),
    ('title = "x"\n[[table]]\nname = "a"\nspecs = ["s"]\n[[table]]\nname = "a"\nspecs = ["s"]\n', "repeated: a"),
    ('title = "x"\n[[table]]\nname = "a"\nspecs = ["s", "t"]\ngrid = ["lr=1,2"]\n', "sweeps one spec"),
])
def test_mistakes_in_a_study_file_are_one_message(tmp_path, text, message):
    (tmp_path / "bad.toml").write_text(text)
    with pytest.raises(MinispecError, match=message):
        load_study(tmp_path / "bad.toml")
    result = invoke("study", tmp_path / "bad.toml")
    assert result.exit_code == 2 and message in result.output


def test_command_line_quotes_what_a_shell_would_split():
    study = load_study(STUDIES[0])
    line = command_line(study.tables[0].model_copy(update={"overrides": ["optimizer=adam(lr=1e-3)"]}), "runs", "a b.png")
    assert line.endswith("--set 'optimizer=adam(lr=1e-3)' --runs runs --plot 'a b.png'")

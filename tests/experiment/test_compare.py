import io
import re

from conftest import TINY, fake_factory, write_spec
from minispec.experiment import TqdmProgress, compare, format_table, run_experiment, summary_table
from minispec.experiment.compare import run_folder
from minispec.experiment.plots import curve, plot_curves


def _pair(tmp_path):
    slow = write_spec(tmp_path, TINY)
    fast = write_spec(tmp_path, TINY.replace("spec tiny", "spec tiny_lr").replace("lr=0.5", "lr=0.1"), "lr.mdl")
    return slow, fast


def test_compare_runs_then_reuses(tmp_path):
    slow, fast = _pair(tmp_path)
    log = []
    first = compare([slow, fast], backend_factory=fake_factory(log=log), vectorize=False, runs_root=tmp_path / "runs", trials=3)
    assert log == [1] * 6
    assert [r.folder for r in first.results] == [run_folder(slow, tmp_path / "runs"), run_folder(fast, tmp_path / "runs")]
    assert first.results[0].folder.name.startswith("tiny-")
    assert first.rows[0].p_value is None and 0 <= first.rows[1].p_value <= 1
    assert first.plot.exists() and first.plot.stat().st_size > 20_000
    text = first.table()
    assert "tiny_lr" in text and "p vs first" in text and "±" in text

    again = compare([slow, fast], backend_factory=fake_factory(log=log), vectorize=False, runs_root=tmp_path / "runs", trials=3)
    assert log == [1] * 6  # nothing trained: both folders reused
    assert again.rows == first.rows

    more = compare([slow], backend_factory=fake_factory(log=log), vectorize=False, runs_root=tmp_path / "runs", trials=4)
    assert log == [1] * 7  # the partial folder is resumed: only trial 3 trained
    assert more.results[0].summary.trials_finished == 4

    fresh = compare([slow], backend_factory=fake_factory(log=log), vectorize=False, runs_root=tmp_path / "runs", trials=2, reuse=False)
    assert fresh.results[0].folder.name.endswith("-2")


def test_table_p_values_are_welch_of_final_errors(tmp_path):
    slow, fast = _pair(tmp_path)
    a = run_experiment(slow, backend_factory=fake_factory(), trials=3, out_dir=tmp_path / "a")
    b = run_experiment(fast, backend_factory=fake_factory(), trials=3, out_dir=tmp_path / "b")
    from minispec.experiment.stats import welch

    rows = summary_table([a, b])
    assert rows[1].p_value == welch(b.final_errors(), a.final_errors()).p
    assert rows[0].trials == 3 and rows[0].params == slow.total_params
    assert format_table(rows).splitlines()[0].startswith("spec")


def test_curve_means_and_overlay(tmp_path):
    slow, fast = _pair(tmp_path)
    a = run_experiment(slow, backend_factory=fake_factory(), trials=3, out_dir=tmp_path / "a")
    epochs, means, stds, n = curve(a, "test_error")
    assert epochs == [1.0, 2.0, 3.0] and n == 3
    finals = [t.records[-1].test_error for t in a.trials]
    assert abs(means[-1] - sum(finals) / 3) < 1e-12
    for metric in ("train_error", "train_loss", "test_loss"):
        path = plot_curves([a], tmp_path / f"{metric}.png", metric=metric)
        assert path.stat().st_size > 10_000


def test_tqdm_progress_plain_lines(tiny, tmp_path):
    out = io.StringIO()
    progress = TqdmProgress(file=out, every=2)
    run_experiment(tiny, backend_factory=fake_factory(), out_dir=tmp_path / "run", progress=progress)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("tiny: 2 trial(s) x 3 epochs")
    assert any(line.startswith("trial 1/2  epoch 2/3") for line in lines)
    assert any(line.startswith("trial 2/2  done: test error") for line in lines)
    assert "test error" in lines[-1] and "±" in lines[-1]


def test_tqdm_progress_bar(tiny, tmp_path):
    out = io.StringIO()
    progress = TqdmProgress(file=out, tty=True)
    run_experiment(tiny, backend_factory=fake_factory(diverge={1: 2}), out_dir=tmp_path / "run", progress=progress)
    text = out.getvalue()
    assert "6/6" in text and "diverged in epoch 2" in text


def test_tqdm_progress_bar_counts_the_epochs_between_sparse_points(tmp_path):
    """eval_every 2 over 3 epochs: points after epochs 2 and 3 only, and the bar still
    counts every epoch (it used to add one per point and end at 4/6)."""
    sparse = write_spec(tmp_path, TINY.replace("trials 2", "trials 2\n    eval_every 2"), "sparse.mdl")
    out = io.StringIO()
    progress = TqdmProgress(file=out, tty=True)
    run_experiment(sparse, backend_factory=fake_factory(), out_dir=tmp_path / "run", progress=progress)
    counts = re.findall(r"(\d+)/6 ", out.getvalue())  # every state the bar drew; intermediate ones may show
    assert counts and counts[-1] == "6"  # it ends full, where it used to end at 4/6


def test_compare_across_backends_labels_each_row(tmp_path):
    spec = write_spec(tmp_path, TINY)
    factories = {"one": fake_factory(), "other": fake_factory()}
    result = compare([spec], backends=factories, runs_root=tmp_path / "runs", trials=2, vectorize=False)
    assert [r.folder.name.endswith("-other") for r in result.results] == [False, True]

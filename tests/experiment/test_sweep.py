"""Sweeps: each trial ends where a lone run with the same --set ends; points that
differ in no shape train as one model; resume gives the same numbers; bad input
is refused, located, before anything trains."""

import io
import json
import shutil

import pytest
from click.testing import CliRunner

from minispec.backends import make_model
from minispec.cli import main
from minispec.compiler import compile_file
from minispec.errors import MinispecError
from minispec.experiment import TqdmProgress, run_experiment
from minispec.experiment.sweep import Axis, load_sweep, plan_sweep, run_sweep
from tests.conftest import ROOT

SPEC = ROOT / "tests/experiment/specs/sweepable.mdl"


def factory(backend):
    def make(program, states, device, generators=None, hyper=None):
        return make_model(backend, program, states, device, generators=generators, hyper=hyper)

    return make


def grid(*texts):
    return [Axis.parse(text) for text in texts]


def test_the_progress_bar_of_a_sweep_counts_every_point_s_trials(tmp_path):
    """Two points share trial numbers 0 and 1, with a point every 2 epochs; the bar
    counts 2 x 2 trials x 3 epochs. Points of 2 and 3 epochs: it counts 10 in all."""
    plan = plan_sweep(SPEC, grid("lr=0.05,0.2", "eval_every=2"), trials=2)
    out = io.StringIO()
    run_sweep(plan, backend_factory=factory("torch"), out_dir=tmp_path / "sweep",
              progress=TqdmProgress(file=out, tty=True))
    assert "12/12" in out.getvalue()
    epochs = plan_sweep(SPEC, grid("epochs=2,3"), trials=2)  # 2 x 2 + 2 x 3 epochs
    out = io.StringIO()
    run_sweep(epochs, backend_factory=factory("torch"), out_dir=tmp_path / "epochs",
              progress=TqdmProgress(file=out, tty=True))
    assert "10/10" in out.getvalue()


@pytest.mark.parametrize("backend", ["torch", "scratch"])
def test_each_trial_of_a_sweep_ends_where_a_lone_run_with_its_set_ends(backend, tmp_path):
    plan = plan_sweep(SPEC, grid("lr=0.05,0.2", "drop=0,0.3"), trials=2)
    assert len(plan.groups) == 1  # four points, one model of 8 replicas
    result = run_sweep(plan, backend_factory=factory(backend), out_dir=tmp_path / "sweep")
    assert [p.values for p in result.summary.points] == [
        {"lr": "0.05", "drop": "0"}, {"lr": "0.05", "drop": "0.3"}, {"lr": "0.2", "drop": "0"}, {"lr": "0.2", "drop": "0.3"}]
    for point, run in zip(result.summary.points, result.runs):
        program = compile_file(SPEC, [f"{k}={v}" for k, v in point.values.items()])
        alone = run_experiment(program, backend_factory=factory(backend), trials=2,
                               out_dir=tmp_path / point.folder.replace("/", "_"), vectorize=False)
        assert run.summary.spec_hash == alone.summary.spec_hash  # the same experiment as `run --set ...`
        for a, b in zip(alone.trials, run.trials):
            assert b.chunk == list(range(2)) * 4  # trained in the one model of the whole sweep
            assert len(b.records) == len(a.records)
            for pa, pb in zip(a.records, b.records):  # same data, weights, order, masks: float32 rounding apart
                assert pb.lr == pa.lr
                assert pb.train_loss == pytest.approx(pa.train_loss, rel=1e-4)
                assert pb.test_loss == pytest.approx(pa.test_loss, rel=1e-4)
            assert b.final.test_error == pytest.approx(a.final.test_error, abs=0.011)


def test_a_shape_changing_key_trains_separate_models_and_epochs_stop_each_point(tmp_path):
    plan = plan_sweep(SPEC, grid("width=8,16", "epochs=1,3"), trials=2)
    assert plan.groups == [[0, 1], [2, 3]]  # widths apart, epochs together
    result = run_sweep(plan, backend_factory=factory("torch"), out_dir=tmp_path / "sweep")
    for point, run in zip(result.summary.points, result.runs):
        epochs = int(point.values["epochs"])
        assert all(t.epochs_done == epochs and len(t.records) == epochs for t in run.trials)
    short = json.loads((tmp_path / "sweep" / result.summary.points[0].folder / "trials/trial_000.json").read_text())
    assert short["chunk"] == [0, 1, 0, 1]
    table = result.table()
    assert "p vs best" in table and "best" in table.splitlines()[2 + result.summary.best]
    csv_lines = (tmp_path / "sweep/sweep.csv").read_text().splitlines()
    assert csv_lines[0].startswith("width,epochs,trials,diverged,test_error_mean") and len(csv_lines) == 5
    assert (tmp_path / "sweep/sweep.png").stat().st_size > 0


def test_a_resumed_sweep_gives_the_same_numbers(tmp_path):
    plan = plan_sweep(SPEC, grid("lr=0.05,0.2"), trials=3)
    whole = run_sweep(plan, backend_factory=factory("torch"), out_dir=tmp_path / "whole", chunk=4)
    assert whole.summary.groups[0].chunk == 4  # two models: replicas 0-3, 4-5
    shutil.copytree(tmp_path / "whole", tmp_path / "killed")
    killed = tmp_path / "killed"
    for path in [*killed.glob("points/p001*/trials/trial_002.json"), *killed.glob("points/p000*/trials/trial_00[12].json")]:
        path.unlink()  # as if killed before these trials were written
    with pytest.raises(MinispecError, match="already holds a sweep"):
        run_sweep(plan, backend_factory=factory("torch"), out_dir=killed)
    resumed = run_sweep(plan, backend_factory=factory("torch"), out_dir=killed, resume=True)
    for a, b in zip(whole.runs, resumed.runs):
        assert [t.model_dump(exclude={"wall_time", "records"}) for t in a.trials] == \
            [t.model_dump(exclude={"wall_time", "records"}) for t in b.trials]
        assert [[p.test_loss for p in t.records] for t in a.trials] == [[p.test_loss for p in t.records] for t in b.trials]
    other = plan_sweep(SPEC, grid("lr=0.05,0.3"), trials=3)
    with pytest.raises(MinispecError, match="other points"):
        run_sweep(other, backend_factory=factory("torch"), out_dir=killed, resume=True)
    assert load_sweep(killed).summary.complete


@pytest.mark.parametrize("texts, kwargs, message, hint", [
    (["lrr=0.1,0.2"], {}, "no parameter or setting of that name", "`lr`"),
    (["width=8,abc"], {}, "unknown name `abc`", None),
    (["epochs=1.5"], {}, "epochs", None),
    (["lr="], {}, "empty values", "0.01,0.1,1"),
    (["lr=0.1,,0.2"], {}, "empty value", None),
    (["lr=0.1,0.1"], {}, "given twice", None),
    (["lr=" + ",".join(str(i) for i in range(1, 101)), "drop=" + ",".join(f"0.{i:03d}" for i in range(100)),
      "aux_weight=" + ",".join(str(i) for i in range(100))], {}, "very large: 1,000,000 points", "--yes"),
    (["width=8,16", "lr=0.1,0.2"], {"vectorize": True}, "`width` change(s) the shapes", "drop --vectorize"),
])
def test_bad_sweeps_are_refused_before_anything_trains(texts, kwargs, message, hint):
    with pytest.raises(MinispecError, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        plan_sweep(SPEC, grid(*texts), **kwargs)
    if hint:
        assert hint in (caught.value.hint or "")


def test_an_empty_sweep_and_a_malformed_grid_are_refused():
    with pytest.raises(MinispecError, match="at least one --grid"):
        plan_sweep(SPEC, [])
    with pytest.raises(MinispecError, match="KEY=VALUES") as caught:
        Axis.parse("lr")
    assert caught.value.span is not None  # located in the option's text
    with pytest.raises(MinispecError, match="LOW < HIGH"):
        Axis.parse("lr=1:0.1", "--range")


def test_random_search_draws_the_same_points_log_uniformly_for_rates():
    axes = [Axis.parse("lr=1e-4:1", "--range"), Axis.parse("drop=0:0.5", "--range")]
    assert axes[0].logarithmic and not axes[1].logarithmic
    first = plan_sweep(SPEC, axes, sample=40)
    again = plan_sweep(SPEC, axes, sample=40)
    assert first.values == again.values and len(first.values) == 40
    rates = [float(p["lr"]) for p in first.values]
    assert all(1e-4 <= r <= 1 for r in rates)
    assert sum(r < 1e-2 for r in rates) >= 10  # log-uniform: half the draws below 1e-2, not 1 %
    assert len(first.groups) == 1


def test_the_sweep_command_prints_the_table(tmp_path):
    out = tmp_path / "s"
    result = CliRunner().invoke(main, ["sweep", str(SPEC), "--grid", "lr=0.05,0.2", "--trials", "2", "--epochs", "1",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "lr    trials  test error (%)" in result.output
    assert (out / "points").is_dir() and len(list((out / "points").iterdir())) == 2
    bad = CliRunner().invoke(main, ["sweep", str(SPEC), "--grid", "lrr=0.1"])
    assert bad.exit_code == 2 and "did you mean `lr`" in bad.output and "Traceback" not in bad.output


def test_a_sweep_section_in_the_spec_is_the_default_grid(tmp_path):
    plan = plan_sweep(ROOT / "tests/experiment/specs/swept.mdl", [], trials=1, epochs=1)
    assert plan.keys == ["lr", "optimizer", "data.train"]
    assert len(plan.values) == 8 and plan.values[1] == {"lr": "0.05", "optimizer": "sgd(lr=0.1, momentum=0.9)",
                                                        "data.train": "200"}
    assert len(plan.groups) == 4  # sgd / adam and the two data sizes change the model; lr does not


@pytest.mark.parametrize("section, message, where", [
    ("sweep {\n  lr 0.1, abc\n}\n", "unknown name `abc`", ":5:11"),
    ("sweep {\n  lrr 0.1, 0.2\n}\n", "sweep lrr: no parameter or setting of that name", ":5:3"),
    ("sweep {\n  lr 0.1\n  lr 0.2\n}\n", "`lr` is swept twice", ":6:3"),
])
def test_mistakes_in_a_sweep_section_point_into_the_spec(section, message, where, tmp_path):
    spec = tmp_path / "bad.mdl"
    shutil.copy(SPEC, tmp_path / "sweepable.mdl")
    spec.write_text('spec bad\ninclude "sweepable.mdl"\n\n' + section)
    with pytest.raises(MinispecError, match=message) as caught:
        plan_sweep(spec, [])
    assert str(caught.value.span).endswith(where), str(caught.value.span)

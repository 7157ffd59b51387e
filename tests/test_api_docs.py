"""docs/api.md runs as written, and the Python API gives the numbers the run
folder records."""

import re
import sys

import pytest
import torch

import minispec
from minispec.backends.torch_nn import build_module
from minispec.experiment.folder import load_run
from tests.conftest import ROOT
from tests.export.test_onnx import TINY


def test_the_api_page_runs_as_written(monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "api.md").read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 8
    monkeypatch.chdir(ROOT)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "docs/api.md", "exec"), namespace)
    printed = capsys.readouterr().out
    assert "saux 2 0.05" in printed
    assert "unknown" in printed and "^" in printed  # the rendered error of the misspelled layer
    results = namespace["results"]
    run = load_run(results.folder)
    assert list(namespace["table"]["test_error"]) == [t.final.test_error for t in run.trials]
    assert len(namespace["curves"]) == 2 * 2  # 2 trials x 2 epochs


def test_overrides_reach_the_program(write_spec):
    spec = minispec.load(write_spec(TINY), {"data.train": 50}, epochs=3, optimizer="sgd(lr=0.5)")
    assert spec.program.train.epochs == 3 and spec.program.data.options["train"] == 50
    assert spec.program.train.optimizer.kind == "sgd" and spec.program.train.optimizer.options["lr"] == 0.5
    from_text = minispec.loads(TINY, trials=1).program
    assert from_text.train.trials == 1 and from_text.source == "<spec>"
    assert [(n.id, n.shape) for n in from_text.nodes] == [(n.id, n.shape) for n in spec.program.nodes]


def test_the_torch_module_holds_the_initial_weights_of_a_run(write_spec):
    spec = minispec.loads(TINY)
    expected = build_module(spec.program).state_dict()
    assert all(torch.equal(expected[k], v) for k, v in spec.torch_module().state_dict().items())


def test_tables_without_pandas_are_lists_of_dicts(write_spec, tmp_path, monkeypatch):
    results = minispec.loads(TINY).run(out=tmp_path / "r")
    monkeypatch.setitem(sys.modules, "pandas", None)
    rows = results.table()
    assert [row["trial"] for row in rows] == [0, 1]
    assert [row["test_error"] for row in rows] == results.test_errors
    assert {row["epoch"] for row in results.curves()} == {1.0, 2.0}
    picture = results.plot("train_loss")
    assert picture._repr_png_().startswith(b"\x89PNG") and picture._repr_svg_() is None

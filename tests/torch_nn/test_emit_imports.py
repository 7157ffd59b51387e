"""Writing text imports no torch: `compile --emit torch|ir|mdl` and `check`
stay fast (importing torch takes seconds)."""

import subprocess
import sys

import pytest
from torch import nn

from minispec.backends.torch_nn.nn_attributes import NN_MODULE_ATTRIBUTES
from tests.conftest import ROOT

RUN_AND_LIST_TORCH = """
import sys
from minispec.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    print("torch modules:", sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")))
"""


@pytest.mark.parametrize("args", [
    ["compile", "specs/caux.mdl", "--emit", "torch"],
    ["compile", "specs/resnet.mdl", "--emit", "ir"],
    ["compile", "specs/saux.mdl", "--emit", "mdl"],
    ["check", "specs/ws_aux_bn_dropout.mdl"],
])
def test_writing_text_does_not_import_torch(args):
    result = subprocess.run([sys.executable, "-c", RUN_AND_LIST_TORCH, *args], capture_output=True, text=True,
                            cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": ""}, check=True)
    assert result.stdout.strip().endswith("torch modules: []"), result.stdout[-500:]
    assert len(result.stdout) > 200  # it did write the text


def test_the_written_out_module_attributes_cover_torchs():
    torchs = {name for name in set(dir(nn.Module())) | set(dir(nn.Module)) if not name.startswith("_")}
    assert torchs <= NN_MODULE_ATTRIBUTES, "add these to minispec/backends/torch_nn/nn_attributes.py"

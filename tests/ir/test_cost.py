"""Cost estimates give known numbers on small specs."""

import pytest

from minispec.compiler import compile_file
from minispec.errors import MinispecError
from minispec.ir.cost import EVAL_CALL_SAMPLES, EVAL_FLOATS, activation_floats, estimate_memory, eval_chunk, forward_flops, parse_bytes
from tests.conftest import ROOT


def test_forward_flops_of_the_disk_mlp():
    program = compile_file(ROOT / "specs/disk.mdl")
    matmuls = 2 * (2 * 25 + 25 * 25 + 25 * 25 + 25 * 1)
    activations = 3 * 25  # three tanh layers
    assert forward_flops(program) == matmuls + activations


def test_conv_flops():
    program = compile_file(ROOT / "specs/cnn_basic.mdl")
    first = next(n for n in program.nodes if n.op == "conv2d")
    assert first.shape == [32, 12, 12]
    assert forward_flops(program) > 2 * 2 * 9 * 32 * 144  # at least the first conv


def test_memory_grows_with_replicas_and_counts_parameters():
    program = compile_file(ROOT / "specs/disk.mdl")
    one, ten = estimate_memory(program, 1), estimate_memory(program, 10)
    assert ten.total - ten.working == 10 * (one.total - one.working) and ten.working == one.working
    # adam: initial state, weights, gradients and two moments, float32
    assert one.parameters == 5 * 1401 * 4


@pytest.mark.parametrize("text,expected", [("8GiB", 8 * 1024**3), ("512M", 512 * 1024**2), ("1000", 1000),
                                           ("1.5 GB", 1_500_000_000)])
def test_parse_bytes(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["lots", "inf", "infGiB", "nan", "-1G", "0", "1e999"])
def test_parse_bytes_refuses_nonsense(text):
    with pytest.raises(MinispecError):
        parse_bytes(text)


def test_evaluation_chunks_keep_one_call_under_the_budget():
    disk, saux = compile_file(ROOT / "specs/disk.mdl"), compile_file(ROOT / "specs/saux.mdl")
    # small activations: 500 samples a call on a CPU (they stay in the caches), 1000 on a GPU
    assert eval_chunk(disk, 1) == eval_chunk(disk, 50) == EVAL_CALL_SAMPLES["cpu"] == 500
    assert eval_chunk(disk, 50, "cuda") == 1000
    per_sample = activation_floats(saux)
    assert eval_chunk(saux, 1) == EVAL_FLOATS["cpu"] // per_sample
    eight = eval_chunk(saux, 8)
    assert eight == EVAL_FLOATS["cpu"] // (8 * per_sample) and 8 * eight * per_sample <= EVAL_FLOATS["cpu"]
    assert eval_chunk(saux, 150, "cuda") > eval_chunk(saux, 150, "cpu") >= 1
    assert eval_chunk(saux, 10**9) == 1  # never zero

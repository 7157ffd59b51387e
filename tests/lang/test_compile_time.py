"""Compile time grows with the size of the resolved net, not faster (issue 16):
blocks that each call the previous one twice took 60 s at depth 12, and a net
past the node limit is refused as it grows, not after the work."""

import time

import pytest

from minispec.compiler import compile_file
from minispec.errors import MinispecError
from minispec.lang.net import MAX_NODES


def doubling(depth: int) -> str:
    """17 lines at depth 12: block b_k calls b_(k-1) twice, so 2**depth calls of b0."""
    lines = ["spec doubling", "data disk(train=20, test=20)", "block b0 { linear(4) | relu }"]
    lines += [f"block b{k} {{ b{k - 1} | b{k - 1} }}" for k in range(1, depth + 1)]
    return "\n".join([*lines, f"net {{ out = x | b{depth} | linear(2) }}", "loss { out cross_entropy(target) }", ""])


def chain(length: int) -> str:
    lines = ["spec chain", "data disk(train=20, test=20)", "net {", "  s0 = x | linear(4)"]
    lines += [f"  s{k} = s{k - 1} | relu" for k in range(1, length)]
    return "\n".join([*lines, f"  out = s{length - 1} | linear(2)", "}", "loss { out cross_entropy(target) }", ""])


def seconds(path) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        compile_file(path)
        best = min(best, time.process_time() - start)
    return best


@pytest.mark.parametrize(("make", "small", "large"), [(doubling, 8, 11), (chain, 500, 4000)], ids=["doubling", "chain"])
def test_eight_times_the_nodes_take_about_eight_times_as_long(make, small, large, write_spec):
    small_path, large_path = write_spec(make(small), "small.mdl"), write_spec(make(large), "large.mdl")
    assert len(compile_file(large_path).nodes) > 7 * len(compile_file(small_path).nodes)
    ratio = seconds(large_path) / seconds(small_path)
    assert ratio < 24, f"8x the nodes took {ratio:.1f}x the CPU time (quadratic would be 64x or more)"


@pytest.mark.parametrize("text", [doubling(14), doubling(40), chain(MAX_NODES + 5)], ids=["depth14", "depth40", "chain"])
def test_a_net_past_the_node_limit_is_refused_while_it_grows(text, write_spec):
    path = write_spec(text)
    start = time.process_time()
    with pytest.raises(MinispecError, match=f"more than {MAX_NODES:,} nodes") as caught:
        compile_file(path)
    assert caught.value.span is not None
    assert time.process_time() - start < 20  # minutes before the fix (depth 14), or never ending (depth 40)

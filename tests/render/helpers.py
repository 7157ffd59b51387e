"""Specs written for the render tests, and small helpers over drawings."""

from minispec.render.drawing import Drawing

RESNET = """
spec tiny_resnet
data mnist(train=100, test=100)
net {
    stem = x | conv2d(32, 3, pad=1) | relu
    body = stem | repeat 10 { residual { conv2d(32, 3, pad=1) | batchnorm | relu | conv2d(32, 3, pad=1) | batchnorm } | relu }
    out = body | avgpool(28) | flatten | linear(10)
}
loss { out cross_entropy(target) }
train { optimizer adam(lr=0.001) batch 32 epochs 2 trials 1 }
"""

NESTED = """
spec nested
data mnist(train=100, test=100)
net {
    out = x | flatten | repeat 2 { linear(16) | repeat 3 { relu } } | linear(10)
}
loss { out cross_entropy(target) }
"""

TWICE_IN_ONE_STATEMENT = """
spec twice
data mnist_pairs(train=100, test=100)
net {
    enc = instance { flatten | linear(8) | relu }
    out = concat(enc(x[0]), enc(x[1])) | linear(2)
}
loss { out cross_entropy(target) }
"""


def ops(drawing: Drawing, op: str) -> list:
    """Boxes whose op line starts with `op`."""
    return [n for n in drawing.nodes if n.lines and n.lines[0].startswith(op) and n.kind not in ("loss", "input")]


def inside(drawing: Drawing, node_id: str, cluster_id: str) -> bool:
    """Whether a box lies in a cluster, directly or in one of its sub-clusters."""
    current = drawing.node(node_id).cluster
    parents = {c.id: c.parent for c in drawing.clusters}
    while current is not None:
        if current == cluster_id:
            return True
        current = parents[current]
    return False

"""`minispec verify`: the hand-written backend checked against torch.nn on one spec.

    report = verify(compile_file("specs/caux.mdl"))           # float64, 3 steps, batch 8
    print(format_report(report)); report.ok

Both backends are built from the same initial state (`initial_state` with the
generator of trial 0 of `seed`) and fed the same random batch: inputs drawn
from a standard normal in the data set's shapes, targets random class indices
encoded for each loss (`minispec.ir.targets.encode`). Everything runs in
training mode (BatchNorm uses batch statistics and updates its running ones),
but with every dropout's p set to 0, since the two backends draw their masks
from different random streams. Compared, tensor by tensor:

    output:<node>    every loss node's output, training mode, first step
    loss:<i>         every loss value, first step
    grad:<name>      every parameter's gradient after the first backward
    param:<name>     every parameter and buffer after `steps` optimizer steps
    predict:<node>   every loss node's output in evaluation mode after the steps

A tensor passes when its largest absolute error is at most atol * max(1, max|torch|):
an absolute tolerance for values of order one or less, relative for large ones.
Defaults: 1e-10 in float64; in float32 1e-5 for the first step's outputs,
losses and gradients and 1e-4 for what follows the optimizer steps (ask for
one step there): Adam and Adadelta divide by the gradient's running scale, so
a gradient of order eps that float32 rounds differently in the two backends
moves a weight by up to lr * rounding / eps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from minispec.backends.scratch_graph import ScratchModel
from minispec.backends.torch_nn import TorchModel
from minispec.backends.weights import initial_state, trial_generator
from minispec.ir.model import Program
from minispec.ir.targets import encode

# dtype -> (atol of the first step's outputs, losses and gradients, atol after the optimizer steps)
DEFAULT_ATOL = {torch.float64: (1e-10, 1e-10), torch.float32: (1e-5, 1e-4)}


@dataclass(frozen=True)
class TensorCheck:
    """One compared tensor: worst absolute error, worst error relative to max|torch|, and the verdict."""

    name: str
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    tolerance: float
    ok: bool


@dataclass(frozen=True)
class VerifyReport:
    program: str
    dtype: torch.dtype
    steps: int
    batch: int
    seed: int
    atol: float
    step_atol: float
    checks: list[TensorCheck]
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[TensorCheck]:
        return [c for c in self.checks if not c.ok]

    def worst(self) -> TensorCheck:
        """The check with the largest error relative to its tolerance."""
        def badness(c: TensorCheck) -> float:
            if c.tolerance > 0:
                return c.max_abs / c.tolerance
            return 0.0 if c.max_abs == 0 else math.inf

        return max(self.checks, key=badness)


def compare(name: str, ours: torch.Tensor, reference: torch.Tensor, atol: float) -> TensorCheck:
    """Max |ours - reference| and the same over max|reference|; ok when within atol * max(1, max|reference|)."""
    ours, reference = ours.detach().cpu(), reference.detach().cpu()
    shape = tuple(reference.shape)
    if tuple(ours.shape) != shape:
        return TensorCheck(name, shape, math.inf, math.inf, atol, False)
    if not reference.is_floating_point():
        err = float((ours.double() - reference.double()).abs().max()) if reference.numel() else 0.0
        return TensorCheck(name, shape, err, err, 0.0, err == 0.0)
    a, b = ours.double(), reference.double()
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        same = bool(torch.equal(a.nan_to_num(0.0, 1.0, -1.0), b.nan_to_num(0.0, 1.0, -1.0)))
        err = 0.0 if same else math.inf
        return TensorCheck(name, shape, err, err, atol, same)
    err = float((a - b).abs().max()) if b.numel() else 0.0
    scale = float(b.abs().max()) if b.numel() else 0.0
    tolerance = atol * max(1.0, scale)
    rel = err / scale if scale > 0 else (0.0 if err == 0 else math.inf)
    return TensorCheck(name, shape, err, rel, tolerance, err <= tolerance)


def without_dropout(program: Program) -> Program:
    """A copy of `program` with every dropout's p set to 0."""
    nodes = [
        node.model_copy(update={"attrs": {**node.attrs, "p": 0.0}}) if node.op == "dropout" else node
        for node in program.nodes
    ]
    return program.model_copy(update={"nodes": nodes})


def random_batch(program: Program, batch: int, seed: int, dtype: torch.dtype):
    """Inputs [1, B, *shape] (standard normal) and encoded targets [1, B, ...] of random classes."""
    g = torch.Generator().manual_seed(seed)
    inputs = {name: torch.randn(1, batch, *shape, generator=g, dtype=dtype) for name, shape in program.data.inputs.items()}
    raw = {
        name: torch.randint(0, program.data.num_classes[name], (1, batch, *shape), generator=g)
        for name, shape in program.data.targets.items()
    }
    return inputs, [encode(loss, raw, dtype) for loss in program.losses]


def verify(
    program: Program,
    *,
    dtype: torch.dtype = torch.float64,
    steps: int = 3,
    batch: int = 8,
    seed: int = 0,
    atol: float | None = None,
    step_atol: float | None = None,
) -> VerifyReport:
    """Run `program` in both backends and compare them tensor by tensor (see the module docstring)."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    default_atol, default_step_atol = DEFAULT_ATOL.get(dtype, DEFAULT_ATOL[torch.float32])
    atol = default_atol if atol is None else atol
    step_atol = default_step_atol if step_atol is None else step_atol
    notes = []
    if any(node.op == "dropout" for node in program.nodes):
        notes.append("dropout disabled (p = 0) in both backends: their random streams differ")
        program = without_dropout(program)
    state = initial_state(program, trial_generator(seed, 0), dtype=dtype)
    inputs, targets = random_batch(program, batch, seed, dtype)

    ours = ScratchModel(program, [state], dtype=dtype)
    reference = TorchModel(program, [{k: v.clone() for k, v in state.items()}], dtype=dtype)
    captured: dict[str, dict[str, torch.Tensor]] = {}

    def capture(module, args, output) -> None:  # returns None: the output is left as it is
        captured.setdefault("outputs", {k: v.detach().clone() for k, v in output.items()})

    hook = reference.module.register_forward_hook(capture)
    checks: list[TensorCheck] = []
    try:
        # First step in pieces on our side, whole on torch's: outputs, losses, gradients.
        ours.zero_grad()
        our_outputs = ours.forward(inputs, training=True)
        our_losses = ours.backward(targets)
        our_grads = ours.gradients(0)
        ours.step()
        ref_losses = reference.train_step(inputs, targets)
    finally:
        hook.remove()
    ref_grads = {
        name: (p.grad if p.grad is not None else torch.zeros_like(p)).detach().cpu().clone()
        for name, p in reference.module.named_parameters()
    }
    for node in program.outputs:
        checks.append(compare(f"output:{node}", our_outputs[node][0], captured["outputs"][node], atol))
    for i, loss in enumerate(program.losses):
        checks.append(compare(f"loss:{i} {loss.kind}({loss.target}) on {loss.node}", our_losses[0, i], ref_losses[0, i], atol))
    for name, ref in ref_grads.items():
        checks.append(compare(f"grad:{name}", our_grads[name], ref, atol))

    for _ in range(steps - 1):
        ours.train_step(inputs, targets)
        reference.train_step(inputs, targets)
    our_state, ref_state = ours.state(0), reference.state(0)
    for name, ref in ref_state.items():
        checks.append(compare(f"param:{name}", our_state[name], ref, step_atol))
    our_pred, ref_pred = ours.predict(inputs), reference.predict(inputs)
    for node in program.outputs:
        checks.append(compare(f"predict:{node}", our_pred[node][0], ref_pred[node][0], step_atol))
    return VerifyReport(program.name, dtype, steps, batch, seed, atol, step_atol, checks, notes)


def format_report(report: VerifyReport) -> str:
    """A table: tensor, shape, max abs err, max rel err, ok; then the notes and a verdict."""
    rows = [("tensor", "shape", "max abs err", "max rel err", "ok")]
    for c in report.checks:
        rows.append((c.name, "x".join(map(str, c.shape)) or "scalar", f"{c.max_abs:.3g}", f"{c.max_rel:.3g}", "ok" if c.ok else "FAIL"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = [
        f"verify {report.program}: scratch vs torch.nn, {str(report.dtype).removeprefix('torch.')}, "
        f"batch {report.batch}, {report.steps} step(s), seed {report.seed}",
        f"tolerance: atol {report.atol:g} (first step), {report.step_atol:g} (after the steps), "
        "times max|torch| when above 1"
    ]
    for i, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) if j < 2 else cell.rjust(w) for j, (cell, w) in enumerate(zip(row, widths))).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.extend(f"note: {note}" for note in report.notes)
    failed = report.failures
    if failed:
        lines.append(f"FAILED: {len(failed)} of {len(report.checks)} tensors differ (worst: {report.worst().name})")
    else:
        lines.append(f"ok: {len(report.checks)} tensors agree")
    return "\n".join(lines)

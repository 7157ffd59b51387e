"""`minispec verify`: the hand-written backend checked against torch.nn on one spec.

    report = verify(compile_file("specs/caux.mdl"))           # float64, 3 steps, batch 8
    report = verify(program, dtype=torch.float32)             # float32, 1 step
    print(format_report(report)); report.ok

Both backends are built from the same initial state (`initial_state` with the
generator of trial 0 of `seed`) and fed the same random batch: inputs drawn
from a standard normal in the data set's shapes, targets random class indices
encoded for each loss (`minispec.backends.targets.encode`). Everything runs in
training mode (BatchNorm uses batch statistics and updates its running ones;
dropout draws its masks, each backend from a generator seeded alike, so both
draw the same masks). Compared, tensor by tensor:

    output:<node>    every loss node's output, training mode, first step
    loss:<i>         every loss value, first step
    grad:<name>      every parameter's gradient after the first backward
    param:<name>     every parameter and buffer after `steps` optimizer steps
    predict:<node>   every loss node's output in evaluation mode, both backends
                     holding torch's weights after the steps

A tensor passes when its largest absolute error is at most atol * max(1, max|torch|):
an absolute tolerance for values of order one or less, relative for large ones.
Defaults: 1e-10 in float64; in float32 1e-5, and 1e-4 for the parameters
after the steps, one step by default (rounding differences grow with every
step, and Adam amplifies them, as follows).

Adam divides each gradient by its own running scale: where a gradient is
nearly zero (a bias followed by batchnorm has a true gradient of exactly
zero, and both backends return rounding noise) the step lr * g / (|g| + eps)
turns a gradient difference d into a weight difference of up to
lr * d * eps / (|g| + eps)^2, as large as lr. For Adam, each weight's
tolerance after the steps therefore adds, per step, that bound with d the
gradient tolerance and |g| the smallest |torch gradient| seen over the steps
(capped at 2 lr); the report counts the weights it widened.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from minispec.backends.scratch_graph import ScratchModel
from minispec.backends.targets import encode
from minispec.backends.torch_nn import TorchModel
from minispec.backends.weights import initial_state, trial_generator
from minispec.experiment.seeding import torch_seed
from minispec.ir.cost import estimate_memory, require_memory
from minispec.ir.model import Program

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
    widened: int = 0  # elements whose tolerance Adam's sensitivity widened (see the module docstring)


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


def compare(
    name: str, ours: torch.Tensor, reference: torch.Tensor, atol: float, extra: torch.Tensor | None = None
) -> TensorCheck:
    """Max |ours - reference| and the same over max|reference|; ok when every element is within
    atol * max(1, max|reference|), plus `extra` (per element, reference's shape) when given."""
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
    if not b.numel():
        return TensorCheck(name, shape, 0.0, 0.0, atol, True)
    diff = (a - b).abs()
    err, scale = float(diff.max()), float(b.abs().max())
    tolerance = atol * max(1.0, scale)
    rel = err / scale if scale > 0 else (0.0 if err == 0 else math.inf)
    if extra is None:
        return TensorCheck(name, shape, err, rel, tolerance, err <= tolerance)
    extra = extra.double().cpu()
    ok = bool((diff <= tolerance + extra).all())
    return TensorCheck(name, shape, err, rel, tolerance, ok, int((extra > tolerance).sum()))


def adam_slack(program: Program, grads: list[dict[str, torch.Tensor]], grad_tolerance: dict[str, float]) -> dict[str, torch.Tensor]:
    """Per parameter element, what Adam can make of a gradient difference within tolerance over
    the steps: sum over steps of min(2 lr, lr * d * eps / (|g| + eps)^2), |g| the smallest seen."""
    options = program.train.optimizer.options
    lr, eps = options["lr"], options["eps"]
    slack = {}
    for name, d in grad_tolerance.items():
        smallest = torch.stack([g[name].double().abs() for g in grads]).amin(0)
        per_step = (lr * d * eps / (smallest + eps) ** 2).clamp(max=2 * lr)
        slack[name] = per_step * len(grads)
    return slack


def random_batch(program: Program, batch: int, seed: int, dtype: torch.dtype):
    """Inputs [1, B, *shape] (standard normal) and encoded targets [1, B, ...] of random classes."""
    g = torch.Generator().manual_seed(seed)
    inputs = {name: torch.randn(1, batch, *shape, generator=g, dtype=dtype) for name, shape in program.data.inputs.items()}
    raw = {
        name: torch.randint(0, program.data.num_classes[name], (1, batch, *shape), generator=g)
        for name, shape in program.data.targets.items()
    }
    return inputs, [encode(loss, raw, dtype) for loss in program.losses]


def _torch_gradients(model: TorchModel) -> dict[str, torch.Tensor]:
    """The gradients of the last torch step under canonical names (left in place by the optimizer step)."""
    return {
        name: (p.grad if p.grad is not None else torch.zeros_like(p)).detach().cpu().clone()
        for name, p in model.module.named_parameters()
    }


def verify(
    program: Program,
    *,
    dtype: torch.dtype = torch.float64,
    steps: int | None = None,
    batch: int = 8,
    seed: int = 0,
    atol: float | None = None,
    step_atol: float | None = None,
) -> VerifyReport:
    """Run `program` in both backends and compare them tensor by tensor (see the module docstring).

    steps: optimizer steps before the parameters are compared; default 3 in
    float64 and 1 otherwise (float32 trajectories part with every Adam step).
    atol / step_atol: tolerances of the first step's tensors / of the
    parameters after the steps (defaults in DEFAULT_ATOL).
    """
    if steps is None:
        steps = 3 if dtype == torch.float64 else 1
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    element = torch.empty((), dtype=dtype).element_size()
    require_memory(estimate_memory(program, 1, batch, data=False, float_bytes=element, models=2),
                   f"verifying `{program.name}` (two models in {dtype})".replace("torch.", ""))
    default_atol, default_step_atol = DEFAULT_ATOL.get(dtype, DEFAULT_ATOL[torch.float32])
    atol = default_atol if atol is None else atol
    step_atol = default_step_atol if step_atol is None else step_atol
    notes = []
    state = initial_state(program, trial_generator(seed, 0), dtype=dtype)
    inputs, targets = random_batch(program, batch, seed, dtype)

    def dropout_generators() -> list[torch.Generator]:
        return [torch.Generator().manual_seed(torch_seed(seed, 0))]

    ours = ScratchModel(program, [state], dtype=dtype, dropout_generators=dropout_generators())
    reference = TorchModel(program, [{k: v.clone() for k, v in state.items()}], dtype=dtype,
                           generators=dropout_generators())
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
    ref_grads = _torch_gradients(reference)
    for node in program.outputs:
        checks.append(compare(f"output:{node}", our_outputs[node][0], captured["outputs"][node], atol))
    for i, loss in enumerate(program.losses):
        checks.append(compare(f"loss:{i} {loss.kind}({loss.target}) on {loss.node}", our_losses[0, i], ref_losses[0, i], atol))
    for name, ref in ref_grads.items():
        checks.append(compare(f"grad:{name}", our_grads[name], ref, atol))

    grad_tolerance = {c.name.removeprefix("grad:"): c.tolerance for c in checks if c.name.startswith("grad:")}
    ref_grad_history = [ref_grads]
    for _ in range(steps - 1):
        ours.train_step(inputs, targets)
        reference.train_step(inputs, targets)
        ref_grad_history.append(_torch_gradients(reference))
    slack = {}
    if program.train.optimizer.kind == "adam":
        slack = adam_slack(program, ref_grad_history, grad_tolerance)
    our_state, ref_state = ours.state(0), reference.state(0)
    for name, ref in ref_state.items():
        checks.append(compare(f"param:{name}", our_state[name], ref, step_atol, slack.get(name)))
    widened = sum(c.widened for c in checks)
    if widened:
        notes.append(
            f"adam: {widened} weight(s) with a gradient near zero (such as a bias before batchnorm) "
            "compared within lr * d * eps / (|g| + eps)^2 per step more, d the gradient tolerance"
        )
    ours.load_state(0, ref_state)  # the same weights on both sides: evaluation mode alone is compared
    our_pred, ref_pred = ours.predict(inputs), reference.predict(inputs)
    for node in program.outputs:
        checks.append(compare(f"predict:{node}", our_pred[node][0], ref_pred[node][0], atol))
    return VerifyReport(program.name, dtype, steps, batch, seed, atol, step_atol, checks, notes)


def format_report(report: VerifyReport) -> str:
    """A table: tensor, shape, max abs err, max rel err, ok; then the notes and a verdict."""
    rows = [("tensor", "shape", "max abs err", "max rel err", "ok")]
    for c in report.checks:
        verdict = ("ok" if c.ok else "FAIL") + ("*" if c.widened else "")
        rows.append((c.name, "x".join(map(str, c.shape)) or "scalar", f"{c.max_abs:.3g}", f"{c.max_rel:.3g}", verdict))
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
    if any(c.widened for c in report.checks):
        lines.append("*: tolerance widened for Adam on some elements (see the note)")
    failed = report.failures
    if failed:
        lines.append(f"FAILED: {len(failed)} of {len(report.checks)} tensors differ (worst: {report.worst().name})")
    else:
        lines.append(f"ok: {len(report.checks)} tensors agree")
    return "\n".join(lines)

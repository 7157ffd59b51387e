"""The torch.nn backend on CUDA: the same numbers as on the CPU (float64), state on the CPU."""

from __future__ import annotations

import pytest
import torch

from minispec.backends import targets as encoding
from minispec.backends.torch_nn import TorchModel, build_module, emit_python
from minispec.backends.weights import initial_state

from .helpers import gen, program, random_inputs, random_raw_targets

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
F64 = torch.float64


def train_on(name: str, device: str, steps: int = 3):
    """Losses of `steps` train steps of `name` on `device` (float64), and the final CPU state."""
    p = program(name)
    model = TorchModel(p, [initial_state(p, gen(0), dtype=F64)], device=device, dtype=F64)
    assert model.device.type == torch.device(device).type
    losses = []
    for step in range(steps):
        inputs = {k: v.unsqueeze(0).to(device) for k, v in random_inputs(p, 10, seed=step).items()}
        raw = {k: v.unsqueeze(0) for k, v in random_raw_targets(p, 10, seed=step + 100).items()}
        targets = [encoding.encode(loss, raw).to(device) for loss in p.losses]
        got = model.train_step(inputs, targets)
        assert got.device.type == torch.device(device).type
        losses.append(got.cpu())
    outputs = model.predict(inputs)
    assert all(v.device.type == torch.device(device).type for v in outputs.values())
    return torch.stack(losses), model


@pytest.mark.parametrize("name", ["caux", "saux_conv", "caux_single"])
def test_training_on_cuda_matches_cpu(name):
    expected, cpu = train_on(name, "cpu")
    got, gpu = train_on(name, "cuda")
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-11)
    cpu_state, gpu_state = cpu.state(0), gpu.state(0)
    assert all(t.device.type == "cpu" for t in gpu_state.values())
    for key in cpu_state:
        torch.testing.assert_close(gpu_state[key], cpu_state[key], rtol=1e-9, atol=1e-11)
    gpu.load_state(0, cpu_state)  # CPU tensors load into the CUDA model
    assert torch.equal(gpu.state(0)["out.weight"], cpu_state["out.weight"])


def test_emitted_module_on_cuda():
    p = program("wsn")
    namespace: dict = {}
    exec(emit_python(p), namespace)
    module = build_module(p, generator=gen(1)).cuda().eval()
    emitted = namespace["Wsn"]().cuda().eval()
    emitted.load_state_dict(module.state_dict(), strict=True)
    x = random_inputs(p, 5)["x"].cuda()
    torch.testing.assert_close(emitted(x)["out"], module(x=x)["out"], rtol=0, atol=0)


def test_vectorized_on_cuda_matches_cpu():
    from minispec.backends.torch_nn.vectorized import VectorizedTorchModel

    p = program("caux")
    states = [initial_state(p, gen(k), dtype=F64) for k in range(3)]
    models = {d: VectorizedTorchModel(p, states, device=d, dtype=F64) for d in ("cpu", "cuda")}
    for step in range(2):
        inputs = {"x": torch.stack([random_inputs(p, 6, seed=10 * step + r, dtype=F64)["x"] for r in range(3)])}
        raw = {k: torch.stack([random_raw_targets(p, 6, seed=10 * step + 5 + r)[k] for r in range(3)])
               for k in p.data.targets}
        targets = [encoding.encode(loss, raw, dtype=F64) for loss in p.losses]
        expected = models["cpu"].train_step(inputs, targets)
        got = models["cuda"].train_step({k: v.cuda() for k, v in inputs.items()}, [t.cuda() for t in targets])
        assert got.device.type == "cuda"
        torch.testing.assert_close(got.cpu(), expected, rtol=1e-9, atol=1e-11)
    for r in range(3):
        for key, value in models["cpu"].state(r).items():
            torch.testing.assert_close(models["cuda"].state(r)[key], value, rtol=1e-9, atol=1e-11)

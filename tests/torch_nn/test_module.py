"""build_module: shapes, parameter counts, real weight sharing, and hand-written references."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from minispec.backends.torch_nn import GraphModule, build_module
from minispec.backends.weights import initial_state

from .helpers import PROGRAMS, CourseWSN, canonical, gen, program, random_inputs


@pytest.mark.parametrize("name", PROGRAMS)
def test_output_shapes_match_the_ir(name):
    p = program(name)
    module = build_module(p)
    inputs = random_inputs(p, batch=3)
    for mode in (True, False):
        module.train(mode)
        outputs = module(**inputs)
        assert list(outputs) == p.outputs
        for node_id, out in outputs.items():
            assert list(out.shape) == [3, *p.node(node_id).shape], node_id
            assert out.dtype == torch.float32


@pytest.mark.parametrize("name", PROGRAMS)
def test_parameter_count_and_canonical_state(name):
    p = program(name)
    module = build_module(p, generator=gen(1))
    assert sum(param.numel() for param in module.parameters()) == p.total_params
    state = initial_state(p, gen(1))
    assert list(module.state_dict()) == list(state)
    assert all(torch.equal(module.state_dict()[k], state[k]) for k in state)


def test_default_generator_is_the_spec_seed():
    p = program("caux")
    a = build_module(p).state_dict()
    b = initial_state(p, gen(p.train.seed))
    assert all(torch.equal(a[k], b[k]) for k in b)


def test_shared_instance_is_one_submodule_called_twice():
    p = program("wsn")
    module = build_module(p)
    conv = module._modules["extract:1:conv2d"]
    seen = []
    conv.register_forward_hook(lambda mod, args, out: seen.append((mod.weight, args[0].shape)))
    module(**random_inputs(p, batch=2))
    assert len(seen) == 2 and seen[0][0] is seen[1][0] is conv.weight
    names = [n for n, _ in module.named_parameters()]
    assert names.count("extract:1:conv2d.weight") == 1 and not any(n.startswith(("a_", "b_")) for n in names)


def test_shared_weight_gets_the_sum_of_both_gradients():
    """d/dW of f(W x0) + f(W x1) through one parameter = the sum over the two uses."""
    p = program("wsn")
    module = build_module(p)
    module.eval()
    inputs = random_inputs(p, batch=4)
    module(**inputs)["out"].sum().backward()
    shared = module._modules["extract:1:conv2d"].weight.grad.clone()

    # the same forward with two independent copies of the weight
    w = module._modules["extract:1:conv2d"].weight.detach()
    copies = [w.clone().requires_grad_(True) for _ in range(2)]
    conv = module._modules["extract:1:conv2d"]
    calls = iter(copies)
    original = conv.forward
    conv.forward = lambda x: F.conv2d(x, next(calls), conv.bias)
    module.zero_grad()
    module(**inputs)["out"].sum().backward()
    conv.forward = original
    torch.testing.assert_close(shared, copies[0].grad + copies[1].grad)
    assert not torch.allclose(copies[0].grad, copies[1].grad)


def test_shared_batchnorm_statistics_see_both_uses():
    shared = build_module(program("wsn"))
    separate = build_module(program("sn"))
    inputs = random_inputs(program("wsn"), batch=5)
    shared(**inputs)
    separate(**inputs)
    assert shared._modules["extract:2:batchnorm"].num_batches_tracked.item() == 2
    assert separate._modules["a:2:batchnorm"].num_batches_tracked.item() == 1
    assert separate._modules["b:2:batchnorm"].num_batches_tracked.item() == 1


@pytest.mark.parametrize("caux", [False, True])
def test_matches_the_hand_written_network(caux):
    p = program("caux" if caux else "wsn")
    torch.manual_seed(11)
    reference = CourseWSN(caux=caux)
    module = build_module(p, generator=gen(11))
    inputs = random_inputs(p, batch=6)
    for mode in (True, False, True):
        reference.train(mode)
        module.train(mode)
        expected = reference(inputs["x"])
        expected = expected if caux else (expected,)
        ours = module(**inputs)
        for node_id, value in zip(p.outputs, expected):
            torch.testing.assert_close(ours[node_id], value, rtol=0, atol=0)
    # running statistics were updated the same way (twice per forward)
    ref_state = canonical(reference.state_dict())
    for key, value in module.state_dict().items():
        torch.testing.assert_close(value, ref_state[key], rtol=0, atol=0)


def test_disk_ops_by_hand():
    """Every remaining op against the same computation written with torch.nn.functional."""
    p = program("disk_mlp")
    module = build_module(p, generator=gen(2))
    s = module.state_dict()
    x = random_inputs(p, batch=7)["x"]

    def reference(x, training):
        h = F.linear(x, s["h:1:linear.weight"], s["h:1:linear.bias"])
        h = F.batch_norm(h, s["h:2:batchnorm.running_mean"].clone(), s["h:2:batchnorm.running_var"].clone(),
                         s["h:2:batchnorm.weight"], s["h:2:batchnorm.bias"], training, 0.2, 1e-3)
        h = F.leaky_relu(h, 0.1)
        h = F.dropout(h, 0.1, training)
        h = torch.tanh(F.linear(h, s["h:5:linear.weight"], s["h:5:linear.bias"])) + h
        h = F.relu(F.linear(h, s["h:8:linear.weight"], s["h:8:linear.bias"]))
        h = F.relu(F.linear(h, s["h:10:linear.weight"], s["h:10:linear.bias"]))
        return {
            "out": F.linear(h, s["out.weight"], s["out.bias"]),
            "prob": torch.sigmoid(F.linear(h, s["prob:1:linear.weight"], s["prob:1:linear.bias"])),
            "soft": torch.log_softmax(F.linear(h, s["soft:1:linear.weight"], s["soft:1:linear.bias"]), dim=1),
        }

    for training in (False, True):
        module.train(training)
        torch.manual_seed(5)
        ours = module(**{"x": x})
        torch.manual_seed(5)
        expected = reference(x, training)
        for key in expected:
            torch.testing.assert_close(ours[key], expected[key], rtol=1e-6, atol=1e-7)
    # momentum 0.2: running_mean = 0.8 * 0 + 0.2 * batch mean
    batch_mean = F.linear(x, s["h:1:linear.weight"], s["h:1:linear.bias"]).mean(0)
    torch.testing.assert_close(module.state_dict()["h:2:batchnorm.running_mean"], 0.2 * batch_mean)
    assert (ours["prob"] > 0).all() and torch.allclose(ours["soft"].exp().sum(1), torch.ones(7))


def test_select_keeps_the_channel_axis_and_conv_strides():
    p = program("odd_names")
    module = build_module(p)
    x = random_inputs(p, batch=2)["x"]
    out = module._modules["torch:1:conv2d"](x)
    assert out.shape == (2, 4, 14, 14)  # stride 2, padding 1
    assert module._modules["to"].bias is None and module._modules["torch:1:conv2d"].bias is None
    assert isinstance(module, GraphModule)
    # a key named like an nn.Module method lives in _modules and leaves the method alone
    assert module.to.__func__ is torch.nn.Module.to
    assert "to" in dict(module.named_children())


def test_missing_input_is_a_clear_error():
    with pytest.raises(TypeError, match="missing input"):
        build_module(program("wsn"))(y=torch.zeros(1, 2, 14, 14))


def test_float64():
    p = program("saux")
    module = build_module(p, dtype=torch.float64)
    out = module(**random_inputs(p, batch=2, dtype=torch.float64))
    assert all(v.dtype == torch.float64 for v in out.values())
    assert module.state_dict()["extract:2:batchnorm.num_batches_tracked"].dtype == torch.long

"""model.conv_impl: the MatMul convolution (Im2Col patches @ weight) and our conv kernel (a Custom op) equal
oneDNN's nn.Conv2d — outputs and gradients at the front-end shapes (the lab's and the zoo's), odd sizes,
batch 1, the depthwise lookahead, PYNATIVE and GRAPH, the whole network's CTC loss and gradients,
checkpoints both ways — and which processes get oneDNN's AVX2 cap."""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

mindspore = pytest.importorskip("mindspore")
from mindspore import Tensor, nn  # noqa: E402

from deepspeech2.core.config import ConfigError, FeatureConfig, ModelConfig, load_config  # noqa: E402
from deepspeech2.data.shapes import output_lengths, conv_stack  # noqa: E402
from deepspeech2.model import conv as conv_mod  # noqa: E402
from deepspeech2.model.conv import (KernelConv2d, MatMulConv2d, exportable_conv_impl, make_conv2d,  # noqa: E402
                                    resolve_conv_impl)
from deepspeech2.model.network import DeepSpeech2  # noqa: E402
from deepspeech2.model.weights import load_weights  # noqa: E402

mindspore.set_device("CPU")
ATOL = 2e-5
RTOL = 1e-4

# (in, out, kernel, stride, padding, group, H, W, batch): the lab stacks' two layers (small_t4 /
# small_t3), odd input sizes, batch 1, a zoo-sized kernel, bias, the lookahead (depthwise, padded right only)
CASES = {
    "small_t4 conv1": (1, 8, (3, 3), (2, 2), (1, 1, 1, 1), 1, 80, 37, 3),
    "small_t4 conv2, batch 1": (8, 8, (3, 3), (2, 2), (1, 1, 1, 1), 1, 40, 19, 1),
    "small_t3 conv1, odd sizes": (1, 4, (3, 3), (2, 3), (1, 1, 1, 1), 1, 17, 29, 2),
    "zoo conv1 kernel": (1, 4, (41, 11), (2, 2), (20, 20, 5, 5), 1, 61, 30, 2),
    "zoo conv2 kernel, odd sizes": (3, 4, (21, 11), (2, 1), (10, 10, 5, 5), 1, 31, 17, 2),
    "asymmetric padding": (3, 5, (3, 3), (1, 2), (0, 2, 1, 0), 1, 9, 12, 2),
    "lookahead (depthwise)": (6, 6, (1, 11), (1, 1), (0, 0, 0, 10), 6, 1, 23, 2),
}


def _value_and_grads(cell, x, dy, graph):
    params = cell.trainable_params()

    def loss(inputs):
        return (cell(inputs) * dy).sum()

    step = mindspore.value_and_grad(loss, 0, params)
    _, (dx, dparams) = (mindspore.jit(step) if graph else step)(x)
    return cell(x).asnumpy(), dx.asnumpy(), {p.name: g.asnumpy() for p, g in zip(params, dparams)}


@pytest.mark.parametrize("impl", ["matmul", "custom"])
@pytest.mark.parametrize("graph", [False, True], ids=["pynative", "graph"])
@pytest.mark.parametrize("case", list(CASES))
def test_conv_impls_equal_onednn_conv(case, graph, impl):
    cin, cout, kernel, stride, padding, group, h, w, batch = CASES[case]
    has_bias = case == "asymmetric padding"
    reference = make_conv2d("onednn", cin, cout, kernel, stride, padding, group, has_bias=has_bias)
    candidate = make_conv2d(impl, cin, cout, kernel, stride, padding, group, has_bias=has_bias)
    assert isinstance(reference, nn.Conv2d)
    assert isinstance(candidate, KernelConv2d if impl == "custom" and group == 1 else MatMulConv2d)
    rng = np.random.default_rng(0)
    for name, param in candidate.parameters_and_names():   # same names and shapes as nn.Conv2d's
        value = rng.standard_normal(param.shape).astype(np.float32)
        param.set_data(Tensor(value))
        dict(reference.parameters_and_names())[name].set_data(Tensor(value))
    x = Tensor(rng.standard_normal((batch, cin, h, w)).astype(np.float32))
    dy = Tensor(rng.standard_normal(reference(x).shape).astype(np.float32))
    want, got = _value_and_grads(reference, x, dy, graph), _value_and_grads(candidate, x, dy, graph)
    assert got[0].shape == want[0].shape
    np.testing.assert_allclose(got[0], want[0], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(got[1], want[1], rtol=RTOL, atol=ATOL)
    assert set(got[2]) == set(want[2])
    for name, grad in want[2].items():
        assert np.abs(grad).max() > 0, name
        np.testing.assert_allclose(got[2][name], grad, rtol=RTOL, atol=1e-4, err_msg=name)


def test_kernel_conv_without_input_gradient_gives_zero_and_the_same_weight_gradient():
    """conv1 reads the features: its input gradient is never computed (zero), its weight gradient is unchanged."""
    args = ((1, 4, (41, 11), (2, 2), (20, 20, 5, 5)))
    full, first = KernelConv2d(*args), KernelConv2d(*args, input_grad=False)
    first.weight.set_data(full.weight.data.copy())
    rng = np.random.default_rng(4)
    x = Tensor(rng.standard_normal((2, 1, 45, 26)).astype(np.float32))
    dy = Tensor(rng.standard_normal(full(x).shape).astype(np.float32))
    want, got = _value_and_grads(full, x, dy, True), _value_and_grads(first, x, dy, True)
    np.testing.assert_array_equal(got[0], want[0])
    assert np.abs(want[1]).max() > 0 and not got[1].any()
    np.testing.assert_array_equal(got[2]["weight"], want[2]["weight"])


def test_matmul_conv_rejects_grouped_convs_it_does_not_implement():
    with pytest.raises(ValueError, match="group 1 or depthwise"):
        MatMulConv2d(4, 8, (3, 3), (1, 1), (1, 1, 1, 1), group=2)


LAB = dict(conv_stack="small_t4", conv_channels=4, hidden_size=8, num_layers=2, rnn_batch_norm=True,
           fc_batch_norm=True)
FBANK = FeatureConfig(type="fbank", n_mels=24)


ZOO = dict(LAB, conv_stack="zoo", rnn_batch_norm=False, fc_batch_norm=False)


def _network_pair(impl, **model):
    mindspore.set_seed(0)
    nets = {name: DeepSpeech2(ModelConfig(conv_impl=name, **model), FBANK, 29) for name in ("onednn", impl)}
    want = dict(nets["onednn"].parameters_and_names())
    for name, param in nets[impl].parameters_and_names():
        param.set_data(want[name].data.copy())
    return nets


@pytest.mark.parametrize("impl, model", [("matmul", LAB), ("matmul", dict(LAB, bidirectional=False, lookahead_context=3)),
                                         ("matmul", dict(LAB, conv_stack="small_t3")), ("custom", ZOO),
                                         ("custom", dict(ZOO, bidirectional=False, lookahead_context=3))],
                         ids=["lab", "streaming", "small_t3", "zoo custom", "zoo streaming custom"])
def test_whole_step_loss_and_gradients_equal_across_conv_impls(impl, model, compiled_steps):
    nets = _network_pair(impl, **model)
    batches = [[61, 40, 23], [37, 30]]
    want_steps, _ = compiled_steps(nets["onednn"], batches, FBANK.n_mels)
    got_steps, _ = compiled_steps(nets[impl], batches, FBANK.n_mels)
    for want, got in zip(want_steps, got_steps):
        assert np.isfinite(want[0])
        np.testing.assert_allclose(got[0], want[0], rtol=1e-5)
        for name, grad in want[1].items():
            np.testing.assert_allclose(got[1][name], grad, rtol=1e-3, atol=1e-4, err_msg=name)


@pytest.mark.parametrize("impl, model", [("matmul", LAB), ("custom", ZOO)])
def test_same_seed_gives_the_same_initial_weights_in_every_impl(impl, model):
    weights = {}
    for name in ("onednn", impl):
        mindspore.set_seed(3)
        net = DeepSpeech2(ModelConfig(conv_impl=name, **model), FBANK, 29)
        weights[name] = {n: p.asnumpy() for n, p in net.parameters_and_names()}
    assert weights["onednn"].keys() == weights[impl].keys()
    for name, value in weights["onednn"].items():
        np.testing.assert_array_equal(weights[impl][name], value, err_msg=name)


@pytest.mark.parametrize("impl, model", [("matmul", LAB), ("custom", ZOO)])
def test_checkpoint_of_one_impl_loads_into_the_other(tmp_path, impl, model):
    mindspore.set_seed(0)
    source = DeepSpeech2(ModelConfig(conv_impl="onednn", **model), FBANK, 29)
    path = tmp_path / "onednn.ckpt"
    mindspore.save_checkpoint(source, str(path))
    mindspore.set_seed(7)
    target = DeepSpeech2(ModelConfig(conv_impl=impl, **model), FBANK, 29)
    load_weights(target, str(path))
    x = Tensor(np.random.default_rng(2).standard_normal((2, 1, FBANK.n_mels, 30)).astype(np.float32))
    lens = Tensor(np.array([30, 17], np.int32))
    source.set_train(False)
    target.set_train(False)
    np.testing.assert_allclose(target(x, lens)[0].asnumpy(), source(x, lens)[0].asnumpy(), rtol=1e-4, atol=ATOL)


@pytest.mark.parametrize("stack, device, avx512, want", [
    ("small_t4", "CPU", True, "custom"), ("small_t3", "CPU", True, "custom"),
    ("small_t4", "CPU", False, "onednn"), ("small_t4", "GPU", True, "onednn"),
    ("zoo", "CPU", True, "custom"), ("zoo_t4", "CPU", True, "custom"), ("zoo", "CPU", False, "custom"),
    ("zoo", "Ascend", True, "onednn")])
def test_auto_picks_our_kernel_on_avx512_cpus_and_for_large_kernels_everywhere(monkeypatch, stack, device, avx512,
                                                                                want):
    monkeypatch.setattr(conv_mod, "has_avx512", lambda: avx512)
    assert resolve_conv_impl(ModelConfig(conv_stack=stack), device) == want
    for explicit in ("onednn", "matmul", "custom"):
        expected = "onednn" if explicit == "custom" and device != "CPU" else explicit
        assert resolve_conv_impl(ModelConfig(conv_stack=stack, conv_impl=explicit), device) == expected
    taps = max(s.kernel[0] * s.kernel[1] for s in conv_stack(ModelConfig(conv_stack=stack)))
    assert (want == "custom") == (device == "CPU" and (avx512 or taps > conv_mod.MATMUL_CONV_MAX_TAPS))
    assert exportable_conv_impl(ModelConfig(conv_stack=stack), device) == ("onednn" if want == "custom" else want)


def test_auto_takes_onednn_convs_when_the_kernel_cannot_be_built(monkeypatch, tmp_path, caplog):
    monkeypatch.setattr(conv_mod, "has_avx512", lambda: True)
    monkeypatch.setenv("DS2_KERNEL_CACHE", str(tmp_path))
    monkeypatch.setattr(shutil, "which", lambda name: None)
    conv_mod.conv_kernel_library.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="deepspeech2.model.conv"):
            assert resolve_conv_impl(ModelConfig(conv_stack="zoo"), "CPU") == "onednn"
            assert resolve_conv_impl(ModelConfig(conv_stack="small_t3"), "CPU") == "matmul"   # AVX-512 here
        assert "needs g++" in caplog.text
        with pytest.raises(RuntimeError, match="model.conv_impl=custom .*needs g\\+\\+.*model.conv_impl=onednn"):
            make_conv2d("custom", 1, 4, (41, 11), (2, 2), (20, 20, 5, 5))
    finally:
        conv_mod.conv_kernel_library.cache_clear()


def test_unknown_conv_impl_is_rejected_at_config_load():
    with pytest.raises(ConfigError, match="conv_impl"):
        load_config(None, ["model.conv_impl=im2col"])


_CAP_PROBE = """
import os, sys
from deepspeech2.core.config import load_config
from deepspeech2.model.build import init_device_for
init_device_for(load_config(sys.argv[1], sys.argv[2:]))
print(os.environ.get("ONEDNN_MAX_CPU_ISA", "none"))
"""


@pytest.mark.parametrize("preset, overrides, capped", [
    ("configs/lab_small.yaml", [], False), ("configs/lab_small.yaml", ["model.conv_impl=onednn"], True),
    ("configs/zoo.yaml", [], False), ("configs/zoo.yaml", ["model.conv_impl=onednn"], True)])
def test_only_processes_with_onednn_convs_cap_onednn_at_avx2(repo_root, preset, overrides, capped):
    if not conv_mod.has_avx512():
        pytest.skip("the AVX2 cap applies to AVX-512 CPUs only")
    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_MAX_CPU_ISA"}
    out = subprocess.run([sys.executable, "-c", _CAP_PROBE, str(repo_root / preset), *overrides], env=env,
                         capture_output=True, text=True, check=True, cwd=repo_root).stdout.split()[-1]
    assert out == ("AVX2" if capped else "none")

"""Student architectures: the model interface distillation relies on, plus unit tests of their blocks."""

import pytest
import torch

from gnuradio.modrec.classes import RADIOML2016_CLASSES
from gnuradio.modrec.training.onnx_export import export_onnx
from gnuradio.modrec.training.flops import count_params
from gnuradio.modrec.training.models import create_model, list_models
from gnuradio.modrec.training.models.mobilenet1d import DEFAULT_BLOCKS, InvertedResidual1d, SqueezeExcite1d

STUDENTS = ["mobilenet1d", "mini_inception_resnet", "cnn3"]

# cnn3's state_dict as it was before forward_features was added: trained checkpoints must still load
CNN3_KEYS = {
    "features.0.weight": (48, 2, 7),
    "features.1.weight": (48,), "features.1.bias": (48,), "features.1.running_mean": (48,),
    "features.1.running_var": (48,), "features.1.num_batches_tracked": (),
    "features.4.weight": (64, 48, 5),
    "features.5.weight": (64,), "features.5.bias": (64,), "features.5.running_mean": (64,),
    "features.5.running_var": (64,), "features.5.num_batches_tracked": (),
    "features.8.weight": (128, 64, 3),
    "features.9.weight": (128,), "features.9.bias": (128,), "features.9.running_mean": (128,),
    "features.9.running_var": (128,), "features.9.num_batches_tracked": (),
    "head.1.weight": (64, 256), "head.1.bias": (64,),
    "head.4.weight": (11, 64), "head.4.bias": (11,),
}


def _trained_bn(model, frame_len=128):
    # non-trivial BN statistics, so eval-mode checks and export parity do not just see identity BNs
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(3 * torch.randn(32, 2, frame_len))
    return model.eval()


@pytest.fixture(scope="module", params=STUDENTS)
def student(request):
    torch.manual_seed(0)
    return request.param, _trained_bn(create_model(request.param))


def test_students_are_registered():
    assert set(STUDENTS) <= set(list_models())


def test_forward_and_forward_features_contract(student):
    name, model = student
    x = torch.randn(5, 2, 128)
    with torch.no_grad():
        logits = model(x)
        feats, logits_ff = model.forward_features(x)
    assert logits.shape == (5, 11)
    assert feats.shape == (5, model.feature_dim), name
    torch.testing.assert_close(logits_ff, logits, atol=0, rtol=0)


def test_gain_invariant_and_zero_safe(student):
    _, model = student
    x = torch.randn(6, 2, 128)
    with torch.no_grad():
        torch.testing.assert_close(model(1000.0 * x), model(x), atol=1e-4, rtol=1e-4)
        assert torch.isfinite(model(torch.zeros(3, 2, 128))).all()


@pytest.mark.parametrize("name", STUDENTS)
@pytest.mark.parametrize("frame_len", [64, 256])
def test_other_frame_lengths(name, frame_len):
    model = create_model(name, frame_len=frame_len).eval()
    with torch.no_grad():
        feats, logits = model.forward_features(torch.randn(2, 2, frame_len))
    assert logits.shape == (2, 11) and feats.shape == (2, model.feature_dim)


def test_onnx_export_parity_and_size(student, tmp_path):
    name, model = student
    info = export_onnx(model, tmp_path / f"{name}.onnx", classes=list(RADIOML2016_CLASSES), frame_len=128,
                       training={})
    assert info["parity_max_abs_diff"] < 1e-4
    assert info["bytes"] < 1_000_000, f"{name}: {info['bytes']} bytes"


def test_mobilenet1d_size_and_config():
    assert count_params(create_model("mobilenet1d")) <= 100_000
    # configs come back from JSON checkpoints as lists of lists
    as_lists = create_model("mobilenet1d", blocks=[list(b) for b in DEFAULT_BLOCKS])
    assert count_params(as_lists) == count_params(create_model("mobilenet1d"))
    assert count_params(create_model("mobilenet1d", width_mult=0.5)) < count_params(as_lists) / 2
    with pytest.raises(ValueError, match="activation"):
        create_model("mobilenet1d", blocks=[(3, 16, 16, False, "gelu", 1)])


def test_mini_inception_resnet_size():
    assert count_params(create_model("mini_inception_resnet")) < 250_000


def test_cnn3_state_dict_unchanged():
    model = create_model("cnn3")
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == CNN3_KEYS
    assert model.feature_dim == model.head[1].in_features


def test_squeeze_excite_gate():
    torch.manual_seed(0)
    se = SqueezeExcite1d(16, 8)
    x = torch.randn(4, 16, 32)
    gate = se.gate(x)
    assert gate.shape == (4, 16, 1)
    assert ((gate > 0) & (gate < 1)).all()  # small init weights keep hard-sigmoid off its rails
    torch.testing.assert_close(se(x), x * gate)
    with torch.no_grad():
        se.expand.bias.fill_(10.0)  # saturated open gate passes features through unchanged
    torch.testing.assert_close(se(x), x)


@pytest.mark.parametrize("c_in, c_out, stride, residual", [(16, 16, 1, True), (16, 16, 2, False), (16, 24, 1, False)])
def test_inverted_residual_uses_skip_only_when_shapes_match(c_in, c_out, stride, residual):
    torch.manual_seed(0)
    block = InvertedResidual1d(c_in, 48, c_out, 5, stride, True, "hswish").eval()
    assert block.use_residual is residual
    x = torch.randn(2, c_in, 32)
    with torch.no_grad():
        block.block[-1][1].weight.zero_()  # the projection's BN: the branch now outputs exactly 0
        block.block[-1][1].bias.zero_()
        y = block(x)
    assert y.shape == (2, c_out, 32 // stride)
    if residual:
        torch.testing.assert_close(y, x)
    else:
        assert not y.any()

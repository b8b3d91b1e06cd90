"""The 2-D export layout (training/conv2d_layout.py): the same outputs as the 1-D model, Conv
nodes on 4-D tensors in the file, and the 1-D graph kept where the copy would differ."""

import onnx
import pytest
import torch
from torch import nn

from gnuradio.modrec import contract
from gnuradio.modrec.classes import RADIOML2016_CLASSES
from gnuradio.modrec.runtime import OnnxModel
from gnuradio.modrec.training.conv2d_layout import as_conv2d, check_same_outputs
from gnuradio.modrec.training.models import create_model, list_models
from gnuradio.modrec.training.onnx_export import DetectOutputs, export_onnx


def _conv_kernel_ranks(path):
    """The kernel_shape lengths of every Conv node in the file (1: 1-D, 2: 2-D)."""
    ranks = set()
    for node in onnx.load(str(path)).graph.node:
        if node.op_type == "Conv":
            ranks |= {len(a.ints) for a in node.attribute if a.name == "kernel_shape"}
    return ranks


# early-exit models run their segments from a plain list, which reuses the backbone's layers
LAYOUT_2D = ["cnn3", "mobilenet1d", "mini_inception_resnet", "inception_resnet", "signal_detector", "cnn3_ee",
             "mobilenet1d_ee", "mini_inception_resnet_ee", "mobilenet1d_det", "ensemble"]
KEPT_1D = {"clst": "its attention reads time as axis 2 (transposes)"}


@pytest.mark.parametrize("name", LAYOUT_2D)
def test_the_2d_copy_computes_what_the_model_does(name):
    torch.manual_seed(0)
    model = create_model(name).eval()
    # trained-looking batch-norm statistics, so a wrongly copied running mean or variance shows
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    if hasattr(model, "forward_detect"):  # detector heads: both outputs, as the export writes them
        model = DetectOutputs(model).eval()
    twin = as_conv2d(model).eval()
    assert check_same_outputs(model, twin, 128) is None
    assert not any(isinstance(m, (nn.Conv1d, nn.BatchNorm1d, nn.MaxPool1d)) for m in twin.modules())
    # the model itself is left alone
    assert any(isinstance(m, nn.Conv1d) for m in model.modules())


def test_strided_and_padded_pools_and_dilated_convs_keep_their_arithmetic():
    model = nn.Sequential(nn.Conv1d(2, 8, 5, stride=2, padding=4, dilation=2, bias=True), nn.BatchNorm1d(8),
                          nn.MaxPool1d(3, stride=2, padding=1), nn.AvgPool1d(2, ceil_mode=True),
                          nn.Conv1d(8, 8, 3, padding=1, groups=8), nn.Flatten()).eval()
    assert check_same_outputs(model, as_conv2d(model).eval(), 128) is None


def test_a_model_the_copy_cannot_follow_is_named_not_hidden():
    class Transposes(nn.Module):  # reads time as axis 2: not the last axis in the 2-D layout
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(2, 4, 3, padding=1)

        def forward(self, x):
            return self.conv(x).transpose(1, 2).flatten(1)

    model = Transposes().eval()
    why = check_same_outputs(model, as_conv2d(model).eval(), 16)
    assert why is not None and ("output 0" in why or "fails" in why), why
    same = nn.Conv1d(2, 4, 3, padding="same")
    with pytest.raises(ValueError, match="padding 'same'"):
        as_conv2d(same)


def test_export_writes_the_2d_layout_with_parity_and_says_so(tmp_path):
    torch.manual_seed(0)
    model = create_model("mobilenet1d")
    info = export_onnx(model, tmp_path / "m.onnx", classes=list(RADIOML2016_CLASSES), frame_len=128, training={})
    assert info["conv_layout"] == contract.CONV_LAYOUT_2D
    assert info["parity_max_abs_diff"] < 1e-4  # the file against the 1-D torch model
    assert _conv_kernel_ranks(tmp_path / "m.onnx") == {2}
    assert OnnxModel(str(tmp_path / "m.onnx")).metadata[contract.CONV_LAYOUT] == contract.CONV_LAYOUT_2D
    info = export_onnx(model, tmp_path / "m1.onnx", classes=list(RADIOML2016_CLASSES), frame_len=128, training={},
                       conv_layout=contract.CONV_LAYOUT_1D)
    assert info["conv_layout"] == contract.CONV_LAYOUT_1D and _conv_kernel_ranks(tmp_path / "m1.onnx") == {1}
    with pytest.raises(ValueError, match="conv_layout must be one of"):
        export_onnx(model, tmp_path / "m2.onnx", classes=list(RADIOML2016_CLASSES), frame_len=128, training={},
                    conv_layout="3d")


def test_a_joined_detector_is_exported_in_the_2d_layout_too(tmp_path):
    torch.manual_seed(0)
    model = create_model("cnn3")
    detector = create_model("signal_detector", spectral_channels=8, dc_removed_spectrum=True)
    info = export_onnx(model, tmp_path / "j.onnx", classes=list(RADIOML2016_CLASSES), frame_len=128, training={},
                       detector=detector.eval(), noise_bias=0.5)
    assert info["conv_layout"] == contract.CONV_LAYOUT_2D and _conv_kernel_ranks(tmp_path / "j.onnx") == {2}


def test_a_model_the_layout_does_not_fit_is_exported_1d_with_a_warning(tmp_path):
    class TimeMajor(nn.Module):  # pools over axis 2 by index: right in 1-D, wrong in the 2-D copy
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(2, 11, 3, padding=1)

        def forward(self, x):
            return self.conv(x).mean(dim=2).flatten(1)[:, :11]

    with pytest.warns(UserWarning, match="1-D convolutions"):
        info = export_onnx(TimeMajor(), tmp_path / "t.onnx", classes=list(RADIOML2016_CLASSES), frame_len=32,
                           training={})
    assert info["conv_layout"] == contract.CONV_LAYOUT_1D and _conv_kernel_ranks(tmp_path / "t.onnx") == {1}


def test_every_registered_classifier_is_covered():
    # a new architecture joins the 2-D copy's test above, or says in KEPT_1D why it cannot
    assert set(list_models()) == set(LAYOUT_2D) | set(KEPT_1D)
    for name in KEPT_1D:
        model = create_model(name).eval()
        assert check_same_outputs(model, as_conv2d(model).eval(), 128) is not None, name

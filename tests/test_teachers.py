"""Teacher models (inception_resnet, clst): contract, sizes, gain invariance, ONNX export, PSCA.

Most tests use small widths/depths: the default configs are only built for the size check and
one forward pass, so the file stays quick on a shared CPU.
"""

import onnx
import pytest
import torch
from torch import nn

from gnuradio.modrec import contract
from gnuradio.modrec.classes import RADIOML2016_CLASSES
from gnuradio.modrec.training.onnx_export import export_onnx
from gnuradio.modrec.training.flops import count_flops, count_params
from gnuradio.modrec.training.models import clst as clst_mod
from gnuradio.modrec.training.models import create_model, list_models
from gnuradio.modrec.training.models import inception_resnet as irn

TEACHERS = ["inception_resnet", "clst"]
SMALL = {
    "inception_resnet": dict(width=0.1, blocks=(1, 1, 1)),
    "clst": dict(stem_dim=8, dims=(16, 24), depths=(1, 1), heads=(2, 2), strides=(2, 2)),
}
MODULES = {"inception_resnet": irn, "clst": clst_mod}
# (min, max) params of the default configs: a real teacher, yet trainable in reasonable GPU time
SIZE = {"inception_resnet": (2e6, 6e6), "clst": (0.5e6, 3e6)}


@pytest.fixture(autouse=True)
def _few_threads():
    # the box is shared; more threads than cores only adds contention
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _small(name, **kw):
    torch.manual_seed(0)
    return create_model(name, **{**SMALL[name], **kw})


def _warm_bn(model, frame_len=128):
    # non-trivial BN statistics, so eval-mode checks and parity exercise them
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(3 * torch.randn(16, 2, frame_len))
    return model.eval()


@pytest.mark.parametrize("name", TEACHERS)
def test_default_config_size_documented_and_forward(name):
    assert name in list_models()
    torch.manual_seed(0)
    model = create_model(name).eval()
    params, flops = count_params(model), count_flops(model, 128)
    lo, hi = SIZE[name]
    assert lo <= params <= hi
    doc = MODULES[name].__doc__
    assert f"{params:,} params" in doc, f"update the {name} docstring: {params:,} params"
    assert f"{flops / 1e6:.1f} MFLOPs/frame" in doc, f"update the {name} docstring: {flops / 1e6:.1f} MFLOPs"
    with torch.no_grad():
        assert model(torch.randn(3, 2, 128)).shape == (3, 11)


@pytest.mark.parametrize("name", TEACHERS)
def test_forward_features_contract_and_frame_lengths(name):
    model = _warm_bn(_small(name, n_classes=7))
    with torch.no_grad():
        for frame_len in (64, 128, 256):
            x = torch.randn(4, 2, frame_len)
            feats, logits = model.forward_features(x)
            assert feats.shape == (4, model.feature_dim) and logits.shape == (4, 7)
            torch.testing.assert_close(model(x), logits, rtol=0, atol=0)
    # the head must read exactly the features: logits are an affine map of them
    head = [m for m in model.head.modules() if isinstance(m, nn.Linear)]
    assert len(head) == 1 and head[0].in_features == model.feature_dim


@pytest.mark.parametrize("name", TEACHERS)
def test_gain_invariant_and_zero_safe(name):
    model = _warm_bn(_small(name))
    x = torch.randn(8, 2, 128)
    with torch.no_grad():
        ref = model(x)
        torch.testing.assert_close(model(1000.0 * x), ref, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(model(1e-4 * x), ref, atol=1e-4, rtol=1e-4)
        assert torch.isfinite(model(torch.zeros(3, 2, 128))).all()


@pytest.mark.parametrize("name", TEACHERS)
def test_train_step_backprops(name):
    model = _small(name).train()
    loss = nn.functional.cross_entropy(model(torch.randn(4, 2, 64)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", TEACHERS)
def test_onnx_export_parity_and_metadata(tmp_path, name):
    model = _warm_bn(_small(name, n_classes=len(RADIOML2016_CLASSES)))
    path = tmp_path / f"{name}.onnx"
    info = export_onnx(model, path, classes=list(RADIOML2016_CLASSES), frame_len=128, training={"seed": 0})
    assert info["exporter"] == "dynamo", "the teachers should not need the legacy exporter"
    assert info["parity_max_abs_diff"] < 1e-4
    md = contract.decode_metadata({p.key: p.value for p in onnx.load(str(path)).metadata_props}, source=str(path))
    assert md["architecture"] == name and md["classes"] == list(RADIOML2016_CLASSES)
    assert md["params"] == count_params(model) and md["flops"] == count_flops(model, 128)


def test_inception_resnet_blocks_are_reusable():
    x = torch.randn(2, 16, 40)
    for block in (irn.InceptionResNetA(16, 8, (8, 8), (8, 8, 8)), irn.InceptionResNetB(16, 8, (8, 8)),
                  irn.InceptionResNetC(16, 8, (8, 8))):
        assert block(x).shape == (2, 16, 40) and block.out_channels == 16
    ra = irn.ReductionA(16, 8, 8, 12, 10)
    rb = irn.ReductionB(16, (8, 12), (8, 10), (8, 8, 6))
    stem = irn.Stem(2, 8, 8, 8, 8, 8, 8, strides=(2, 2))
    assert ra(x).shape == (2, ra.out_channels, 20) and ra.out_channels == 16 + 10 + 12
    assert rb(x).shape == (2, rb.out_channels, 20) and rb.out_channels == 16 + 12 + 10 + 6
    assert stem(torch.randn(2, 2, 65)).shape == (2, stem.out_channels, 17) and stem.out_channels == 24
    model = _small("inception_resnet", blocks=(2, 0, 1), width=0.2)
    kinds = [type(m).__name__ for m in model.blocks]
    assert kinds == ["InceptionResNetA", "InceptionResNetA", "ReductionA", "ReductionB", "InceptionResNetC"]


def test_psca_uses_both_branches_and_depthwise_ctp():
    torch.manual_seed(0)
    psca = clst_mod.PSCA(16, heads=2).eval()
    for proj in (psca.ctp.q, psca.ctp.k, psca.ctp.v):
        dw, bn, pw = proj
        assert isinstance(dw, nn.Conv1d) and dw.groups == dw.in_channels == dw.out_channels == 16
        assert dw.kernel_size == (3,) and isinstance(bn, nn.BatchNorm1d)
        assert isinstance(pw, nn.Conv1d) and pw.kernel_size == (1,) and pw.groups == 1
    x = torch.randn(3, 20, 16)
    with torch.no_grad():
        ref = psca(x)
        for branch in (psca.temporal, psca.channel):
            handle = branch.register_forward_hook(lambda mod, inp, out: torch.zeros_like(out))
            try:
                assert (psca(x) - ref).abs().max() > 1e-3, f"{type(branch).__name__} has no effect"
            finally:
                handle.remove()
        # the channel branch's own parameter matters too: tau = 0 makes its map uniform
        psca.channel.temperature.zero_()
        assert (psca(x) - ref).abs().max() > 1e-4
    # every ClST block attends with PSCA
    model = _small("clst")
    assert sum(isinstance(m, clst_mod.PSCA) for m in model.modules()) == sum(SMALL["clst"]["depths"])


def _attention_flops(model, frame_len):
    """FLOPs of the attention matmuls, which count_flops (convs and linears only) misses."""
    total = 0

    def temporal(mod, inp, out):  # q, k, v: (1, h, d, T): QK^T and AV, T*T*d MACs each per head
        nonlocal total
        _, h, d, t = inp[0].shape
        total += 2 * 2 * h * t * t * d

    def channel(mod, inp, out):  # d x d map per head, then applied to T tokens
        nonlocal total
        _, h, d, t = inp[0].shape
        total += 2 * 2 * h * d * d * t

    hooks = [m.register_forward_hook(temporal) for m in model.modules() if isinstance(m, clst_mod.TemporalAttention)]
    hooks += [m.register_forward_hook(channel) for m in model.modules() if isinstance(m, clst_mod.ChannelAttention)]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 2, frame_len))
    finally:
        for hk in hooks:
            hk.remove()
    return total


def test_clst_attention_flops_note():
    """The closed form quoted in the clst docstring agrees with the shapes seen at run time."""
    model = create_model("clst")
    cfg = model.model_cfg
    closed, t = 0, 128
    for dim, depth, h, s in zip(cfg["dims"], cfg["depths"], cfg["heads"], cfg["strides"]):
        t = -(-t // s)
        closed += depth * 4 * (t * t * dim + t * dim * (dim // h))
    assert _attention_flops(model, 128) == closed
    total = count_flops(model, 128) + closed
    assert f"{closed / 1e6:.1f} MFLOPs" in clst_mod.__doc__ and f"{total / 1e6:.1f} MFLOPs/frame in all" in clst_mod.__doc__

"""Student models: registry, shapes, size, gain invariance, FLOPs counter, ONNX export."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from gnuradio.modrec import contract
from gnuradio.modrec.classes import RADIOML2016_CLASSES
from gnuradio.modrec.training.onnx_export import check_parity, export_onnx
from gnuradio.modrec.training.flops import count_flops, count_params
from gnuradio.modrec.training.models import registry
from gnuradio.modrec.training.models import create_model, default_config, list_models, register_model


@pytest.mark.parametrize("name", list_models(kind="classifier") + list_models(kind="ensemble"))
@pytest.mark.parametrize("n_classes", [11, 5])
def test_every_model_builds_and_outputs_logits(name, n_classes):
    torch.manual_seed(0)
    model = create_model(name, n_classes=n_classes).eval()
    assert model.model_name == name and model.model_cfg["n_classes"] == n_classes
    out = model(torch.randn(7, 2, 128))
    assert out.shape == (7, n_classes)
    assert isinstance(default_config(name), dict)


def test_the_signal_detector_estimates_snr_and_noise_at_any_gain():
    assert list_models(kind="detector") == ["signal_detector"]
    everything = (set(list_models(kind="classifier")) | {"signal_detector"} | set(list_models(kind="detecting"))
                  | set(list_models(kind="ensemble")))
    assert set(list_models()) == everything
    torch.manual_seed(0)
    model = create_model("signal_detector").eval()
    x = torch.randn(5, 2, 128)
    out = model(x)
    assert out.shape == (5, 2)  # (SNR dB, noise logit)
    torch.testing.assert_close(model(x * 1e3), out, rtol=1e-4, atol=1e-4)  # normalised: gain does not matter
    assert torch.isfinite(model(torch.zeros(2, 2, 128))).all()  # silence


def test_the_detector_s_spectral_branch_reads_the_log_periodogram():
    from gnuradio.modrec.training.models.signal_detector import LogPowerSpectrum

    x = torch.randn(3, 2, 128)
    z = (x[:, 0] + 1j * x[:, 1]).numpy() * np.hanning(128)
    expected = np.log10(np.maximum(np.abs(np.fft.fft(z, axis=1)) ** 2 / 128, 1e-6))
    np.testing.assert_allclose(LogPowerSpectrum(128)(x)[:, 0].numpy(), expected, atol=1e-4)
    torch.manual_seed(0)
    model = create_model("signal_detector", spectral_channels=8).eval()
    assert not any("spectrum.0" in k for k in model.state_dict())  # the DFT is rebuilt, not saved
    torch.testing.assert_close(model(x * 1e-3), model(x), rtol=1e-4, atol=1e-4)
    assert torch.isfinite(model(torch.zeros(2, 2, 128))).all()


def test_the_detector_s_dc_removed_spectrum_drops_a_dc_offset_but_keeps_a_carrier_off_0_hz():
    from gnuradio.modrec.training.models.signal_detector import DcRemovedSpectra, LogPowerSpectrum

    n = torch.arange(128)
    noise = 0.1 * torch.randn(2, 2, 128, generator=torch.Generator().manual_seed(0))
    dc = noise + torch.tensor([1.0, 0.5])[None, :, None]  # a DC offset: 0 Hz
    f = 0.005  # cycles/sample: a carrier offset the generator draws (cfo_max 0.01)
    carrier = noise + torch.stack([torch.cos(2 * torch.pi * f * n), torch.sin(2 * torch.pi * f * n)])[None]
    spectra = DcRemovedSpectra(128)
    for x in (dc, carrier):
        torch.testing.assert_close(spectra(x)[:, :1], LogPowerSpectrum(128)(x))  # channel 0: the plain spectrum
        # channel 1 comes from the same DFT less the mean's transform: the spectrum of x less its mean
        torch.testing.assert_close(spectra(x)[:, 1:], LogPowerSpectrum(128)(x - x.mean(dim=-1, keepdim=True)),
                                   rtol=0, atol=2e-4)
    peak = lambda x: spectra(x)[:, 1].max(dim=1).values.min()  # noqa: E731
    flat = LogPowerSpectrum(128)(noise)[:, 0].max(dim=1).values.max()
    assert peak(dc) < flat + 0.5 and peak(carrier) > flat + 1.0  # log10 power: the carrier stays >10x above
    torch.manual_seed(0)
    model = create_model("signal_detector", spectral_channels=8, dc_removed_spectrum=True).eval()
    assert torch.isfinite(model(torch.zeros(2, 2, 128))).all()
    torch.testing.assert_close(model(dc * 1e3), model(dc), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="dc_removed_spectrum needs the spectral branch"):
        create_model("signal_detector", dc_removed_spectrum=True)


def test_registry_lists_and_rejects_unknowns():
    assert "cnn3" in list_models() and list_models("cnn*") == ["cnn3", "cnn3_ee"]
    with pytest.raises(KeyError, match="did you mean 'cnn3'"):
        create_model("cnn33")
    with pytest.raises(TypeError, match="unknown config field.*chanels"):
        create_model("cnn3", chanels=[8, 8, 8])


def test_register_model_decorator_and_defaults():
    @register_model(name="_test_tiny")
    def tiny(n_classes=3, frame_len=16, width=4):
        return nn.Sequential(nn.Flatten(), nn.Linear(2 * frame_len, n_classes))

    assert default_config("_test_tiny") == {"n_classes": 3, "frame_len": 16, "width": 4}
    try:
        m = create_model("_test_tiny", width=8)
        assert m.model_cfg == {"n_classes": 3, "frame_len": 16, "width": 8}
    finally:
        registry._MODELS.pop("_test_tiny")


def test_cnn3_is_small():
    assert count_params(create_model("cnn3")) < 100_000


def test_cnn3_gain_invariant_and_zero_safe():
    torch.manual_seed(1)
    model = create_model("cnn3").eval()
    x = torch.randn(16, 2, 128)
    with torch.no_grad():
        ref = model(x)
        for gain in (1e-4, 1000.0):
            torch.testing.assert_close(model(gain * x), ref, atol=1e-4, rtol=1e-4)
        assert torch.isfinite(model(torch.zeros(3, 2, 128))).all()


def test_flops_counter_hand_checked():
    # conv: 4 out ch x 8 positions x (2 in ch x 3 taps) = 192 MACs; linear: 5 x 32 = 160 MACs
    tiny = nn.Sequential(nn.Conv1d(2, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(32, 5))
    assert count_flops(tiny, frame_len=8) == 2 * (192 + 160)
    # grouped conv: each output sees in_channels / groups inputs
    grouped = nn.Sequential(nn.Conv1d(2, 4, 3, padding=1, groups=2))
    assert count_flops(grouped, frame_len=8) == 2 * 4 * 8 * 1 * 3
    assert count_params(tiny) == (2 * 3 * 4 + 4) + (32 * 5 + 5)


def test_cnn3_flops_hand_checked():
    # default cnn3: conv 2->48 k7 @128, 48->64 k5 @64, 64->128 k3 @32, fc 256->64, 64->11
    macs = 48 * 128 * 2 * 7 + 64 * 64 * 48 * 5 + 128 * 32 * 64 * 3 + 64 * 256 + 11 * 64
    assert count_flops(create_model("cnn3"), 128) == 2 * macs


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
def test_export_parity_and_metadata_round_trip(tmp_path, dynamo):
    torch.manual_seed(2)
    model = create_model("cnn3", n_classes=len(RADIOML2016_CLASSES))
    # make BN statistics non-trivial so parity covers them
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(64, 2, 128) * 3)
    path = tmp_path / "m.onnx"
    training = {"command": "pytest", "seed": 2, "data": {"name": "random"}}
    info = export_onnx(model, path, classes=list(RADIOML2016_CLASSES), frame_len=128, samples_per_symbol=8,
                       training=training, dynamo=dynamo)
    assert info["parity_max_abs_diff"] < 1e-4
    assert not list(tmp_path.glob("*.data")), "model must be a single self-contained file"

    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    md = contract.decode_metadata({p.key: p.value for p in proto.metadata_props}, source=str(path))
    assert md["classes"] == list(RADIOML2016_CLASSES)
    assert md["frame_len"] == 128 and md["samples_per_symbol"] == 8 and md["exits"] == 1
    assert md["architecture"] == "cnn3" and md["distillation"] == "none" and md["pruning"] == "none"
    assert md["params"] == count_params(model) and md["flops"] == count_flops(model, 128)
    assert md["training"] == training and md["version"] == contract.CONTRACT_VERSION

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,), (out,) = sess.get_inputs(), sess.get_outputs()[:1]
    assert inp.name == contract.INPUT_NAME and inp.shape == [contract.BATCH_AXIS_NAME, 2, 128]
    assert out.name == contract.PROBS_OUTPUT_NAME and out.shape == [contract.BATCH_AXIS_NAME, 11]
    for n in (1, 5):
        (p,) = sess.run([contract.PROBS_OUTPUT_NAME], {contract.INPUT_NAME: np.random.randn(n, 2, 128).astype(np.float32)})
        assert p.shape == (n, 11)
        np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)


def test_parity_check_raises_on_mismatch(tmp_path):
    torch.manual_seed(3)
    model = create_model("cnn3", n_classes=4)
    path = tmp_path / "m.onnx"
    export_onnx(model, path, classes=list("abcd"), frame_len=128, training={}, dynamo=False)
    with torch.no_grad():
        model.head[-1].bias += 5 * torch.arange(4.0)  # the torch model now disagrees with the file
    with pytest.raises(RuntimeError, match="differ by"):
        check_parity(model, path, 128)


@pytest.mark.parametrize("name", ["onecycle", "cosine", "constant"])
def test_lr_schedules_span_the_run(name):
    from gnuradio.modrec.training.config import OptimConfig, ScheduleConfig
    from gnuradio.modrec.training.optim import build_optimizer, build_scheduler

    model = create_model("cnn3", channels=[4, 4, 4], hidden=4)
    oc, sc = OptimConfig(lr=0.01), ScheduleConfig(name=name, warmup_frac=0.2, final_lr_frac=0.01)
    opt = build_optimizer(model, oc)
    sched = build_scheduler(opt, sc, oc.lr, 100)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    if name == "constant":
        assert lrs == [0.01] * 100
    else:
        assert max(lrs) == pytest.approx(0.01, rel=0.05) and 15 <= int(np.argmax(lrs)) <= 25
        assert lrs[-1] < 0.1 * max(lrs)


@pytest.mark.parametrize("steps", [1, 2, 3, 10, 11])
def test_onecycle_survives_tiny_runs(steps):
    # 10 steps at 10% warm-up used to give OneCycleLR a one-step phase: ZeroDivisionError.
    from gnuradio.modrec.training.config import OptimConfig, ScheduleConfig
    from gnuradio.modrec.training.optim import build_optimizer, build_scheduler

    model = create_model("cnn3", channels=[4, 4, 4], hidden=4)
    oc, sc = OptimConfig(lr=0.01), ScheduleConfig(name="onecycle", warmup_frac=0.1, final_lr_frac=0.01)
    opt = build_optimizer(model, oc)
    sched = build_scheduler(opt, sc, oc.lr, steps)
    for _ in range(steps):
        opt.step()
        sched.step()
        assert 0 < opt.param_groups[0]["lr"] <= 0.01 * 1.0001

"""modrec open-set-eval: the shares a model tags noise and unknown, and open-set AUROC."""

import json

import numpy as np
import onnx
import pytest
from onnx_fixtures import build_v2_model

from gnuradio.modrec.training.cli import main
from gnuradio.modrec.training.data.generator import DEFAULT_CONFIG, GeneratorConfig
from gnuradio.modrec.training.data.open_set import OPEN_SET_MODULATIONS
from gnuradio.modrec.training.open_set_eval import auroc, open_set_evaluation


def test_auroc_hand_checked():
    assert auroc([0, 1], [2, 3]) == 1.0 and auroc([2, 3], [0, 1]) == 0.0
    assert auroc([1, 1], [1, 1]) == 0.5  # ties count half
    assert auroc([0, 2], [1, 3]) == 0.75  # 3 of 4 pairs ordered
    assert np.isnan(auroc([], [1.0]))


def test_a_version_2_model_is_measured_on_known_unseen_and_noise_frames(tmp_path):
    # the fixture (32-sample frames, classes BPSK QPSK noise WBFM) is no real detector, but every
    # number must be what its own decisions say
    path = tmp_path / "v2.onnx"
    onnx.save(build_v2_model(threshold=-1.2), str(path))
    cfg = GeneratorConfig(**{**DEFAULT_CONFIG.to_dict(), "frame_len": 32, "classes": ["BPSK", "QPSK", "WBFM"]})
    result = open_set_evaluation(path, snrs_db=[0, 10], frames_per_point=20, noise_frame_count=60, config=cfg,
                                 progress=False)
    assert result["scores"] == ["maxprob", "energy"] and result["open_set"]["noise_class"] == "noise"
    assert [r["snr_db"] for r in result["known"]] == [0, 10] and all(r["n"] == 60 for r in result["known"])
    assert [e["modulation"] for e in result["unseen"]] == list(OPEN_SET_MODULATIONS)
    for entry in result["unseen"]:
        for score in ("maxprob", "energy"):
            assert 0 <= entry["auroc_snr_ge_0"][score] <= 1
        assert all(0 <= r["noise"] + r["unknown"] <= 1 for r in entry["per_snr"])
    assert sum(r["n"] for r in result["noise"]) == 60
    assert 0 < result["noise_all"]["noise"] + result["noise_all"]["unknown"] <= 1
    # the fixture's snr_db output is 10 log10 of the frame's mean square I/Q value: a known answer
    assert result["has_snr"] and all("snr_mae_db" in r for r in result["known"])


def test_the_command_writes_json_and_tables(tmp_path):
    path = tmp_path / "v2.onnx"
    onnx.save(build_v2_model(frame_len=128), str(path))
    assert main(["open-set-eval", "--onnx", str(path), "--frames", "2", "--noise-frames", "30", "--json",
                 str(tmp_path / "r.json"), "--markdown", str(tmp_path / "r.md"), "--plot", str(tmp_path / "r.png"),
                 "--no-progress"]) == 0
    assert (tmp_path / "r.png").stat().st_size > 1000
    result = json.loads((tmp_path / "r.json").read_text())
    assert [r["snr_db"] for r in result["known"]] == list(range(-20, 41, 2)) and result["version"] == "2"
    table = (tmp_path / "r.md").read_text()
    assert "| white noise |" in table and "energy AUROC 0..10" in table and "| LFM |" in table
    assert "SNR MAE (dB)" in table and "SNR estimate over -10..18 dB" in table
    with pytest.raises(SystemExit):
        main(["open-set-eval", "--onnx", str(path), "--frames", "0"])

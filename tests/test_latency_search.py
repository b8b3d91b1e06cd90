"""The latency search (apps/latency_search.py, configs/studies/latency_search.yaml): its search space, the
configs of the candidates it says were trained, and a measure-and-report run on a two-point space."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch
import yaml

from gnuradio.modrec.training.config import load_config
from gnuradio.modrec.training.flops import count_params
from gnuradio.modrec.training.models import create_model

ROOT = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("latency_search", ROOT / "apps" / "latency_search.py")
ls = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(ls)
STUDY = yaml.safe_load((ROOT / "configs" / "studies" / "latency_search.yaml").read_text())
ROUND_2 = yaml.safe_load((ROOT / "configs" / "studies" / "latency_search_c16.yaml").read_text())
ROUND_3 = yaml.safe_load((ROOT / "configs" / "studies" / "latency_search_fused.yaml").read_text())


@pytest.mark.parametrize("study", [STUDY, ROUND_2, ROUND_3], ids=["round 1", "round 2", "round 3"])
def test_the_trained_candidates_are_points_of_the_space_and_their_configs_build_them(study):
    for name, axes in study["trained"].items():
        assert set(axes) == set(study["axes"]) and all(axes[k] in study["axes"][k] for k in axes), name
        cfg = load_config(ROOT / "configs" / f"{name}.yaml")
        assert cfg.experiment == name
        assert [list(b) for b in cfg.model.cfg["blocks"]] == ls.candidate_cfg(axes)["blocks"], name
        assert ls.builds_candidate(cfg.model.cfg, axes), name  # outer_act and width too, as the report checks
        other = {**axes, "depth": 5 if axes["depth"] != 5 else 7}
        assert not ls.builds_candidate(cfg.model.cfg, other), name


def test_the_rounds_write_between_their_own_markers():
    assert ls.markers(STUDY) == (ls.BEGIN, ls.END)
    assert ls.markers(ROUND_2) == ("<!-- latency-c16:begin -->", "<!-- latency-c16:end -->")
    assert ls.markers(ROUND_3) == ("<!-- latency-fused:begin -->", "<!-- latency-fused:end -->")
    page = (ROOT / "models" / "LATENCY.md").read_text()
    assert all(page.count(marker) == 1 for marker in ls.markers(STUDY) + ls.markers(ROUND_2) + ls.markers(ROUND_3))


def test_the_axes_change_what_they_say():
    base = {"squeeze_excite": True, "activation": "default", "expansion": 1.0, "width_mult": 1.0, "depth": 7,
            "kernel": "default"}
    default = create_model("mobilenet1d")
    assert count_params(create_model("mobilenet1d", **ls.candidate_cfg(base))) == count_params(default)
    no_se = ls.candidate_cfg({**base, "squeeze_excite": False})["blocks"]
    assert not any(b[3] for b in no_se)
    relu = ls.candidate_cfg({**base, "activation": "relu"})["blocks"]
    assert {b[4] for b in relu} == {"relu"}
    half = ls.candidate_cfg({**base, "expansion": 0.5})["blocks"]
    assert half[0][1] == 16 and half[1][1] == 32  # the first block has no expansion to halve
    assert len(ls.candidate_cfg({**base, "depth": 5})["blocks"]) == 5
    assert {b[0] for b in ls.candidate_cfg({**base, "kernel": 7})["blocks"]} == {7}
    # round 2's axes: absent, they are the default's
    assert ls.candidate_cfg({**base, "channels": "default"}) == ls.candidate_cfg(base)
    c16 = ls.candidate_cfg({**base, "channels": 16})
    assert all(b[1] % 16 == 0 and b[2] % 16 == 0 for b in c16["blocks"]) and c16["blocks"][4][1:3] == [128, 48]
    narrow = ls.candidate_cfg({**base, "channels": 16, "width_mult": 0.75})
    assert narrow["width_mult"] == 1.0 and narrow["blocks"][4][1:3] == [96, 32]  # 120 x 0.75 = 90 -> 96; 40 x 0.75 = 30 -> 32
    assert narrow["stem_channels"] == 16 and narrow["last_channels"] == 96
    create_model("mobilenet1d", **narrow)  # builds
    assert "outer_act" not in ls.candidate_cfg({**base, "activation": "relu"})
    relu_all = ls.candidate_cfg({**base, "activation": "relu_all"})
    assert relu_all["outer_act"] == "relu" and {b[4] for b in relu_all["blocks"]} == {"relu"}
    assert ls.builds_candidate(relu_all, {**base, "activation": "relu_all"})
    without_outer = {k: v for k, v in relu_all.items() if k != "outer_act"}  # the blocks alone are not enough
    assert not ls.builds_candidate(without_outer, {**base, "activation": "relu_all"})
    # round 3's: the first blocks fused (one regular convolution for expansion and depthwise)
    assert ls.candidate_cfg({**base, "fused": 0}) == ls.candidate_cfg(base)
    fused = create_model("mobilenet1d", **ls.candidate_cfg({**base, "fused": 2}))
    first_convs = [next(m for m in block.modules() if isinstance(m, torch.nn.Conv1d)) for block in fused.blocks]
    depthwise = [any(isinstance(m, torch.nn.Conv1d) and m.groups > 1 for m in block.modules())
                 for block in fused.blocks]
    assert depthwise == [False, False, True, True, True, True, True]
    assert [c.kernel_size[0] for c in first_convs[:2]] == [3, 3]  # the fused ones take the depthwise kernel
    assert first_convs[1].stride == (2,) and first_convs[1].out_channels == 64  # and its stride, to the expansion
    assert count_params(fused) > count_params(default)
    for bad in ({"channels": 32}, {"activation": "gelu"}, {"fused": 8}, {"fused": -1}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            ls.candidate_cfg({**base, **bad})


def test_measure_and_report_on_a_two_point_space(tmp_path, monkeypatch):
    study = {**STUDY, "axes": {**{k: v[:1] for k, v in STUDY["axes"].items()}, "squeeze_excite": [True, False]},
             "trained": {}}
    measured = tmp_path / "latency.json"
    ls.measure(study, measured, rounds=1)
    rows = json.loads(measured.read_text())["candidates"]
    assert len(rows) == 2 and all(r["frames_per_s"] > 0 and r["params"] > 0 and r["flops"] > 0 for r in rows)
    import gnuradio.modrec.runtime as runtime

    cnn3 = runtime.shipped_models()["cnn3"]
    monkeypatch.setattr(runtime, "shipped_models", lambda: {"cnn3": cnn3})  # one of today's students: quick
    page = tmp_path / "LATENCY.md"
    page.write_text(f"# x\n\n{ls.BEGIN}\nold\n{ls.END}\nafter\n")
    ls.report(study, measured, page, tmp_path / "plot.png", rounds=1)
    text = page.read_text()
    assert "old" not in text and text.endswith("after\n") and "squeeze_excite False" in text
    assert (tmp_path / "plot.png").stat().st_size > 1000

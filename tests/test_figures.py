"""The reports' figures: every line looks unlike the others on its axes, legends sit outside the
axes (no curve hidden) and inside the saved image (nothing cut); an evaluation's figures and
card carry the model's own name, with a second confusion matrix at SNR >= 10 dB."""

import json
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from matplotlib import colors as mcolors

import onnx_fixtures as fx
from gnuradio.modrec.training import evaluate as ev
from gnuradio.modrec.training.cli import main
from gnuradio.modrec.training.data.dataset import FORMAT_VERSION
from gnuradio.modrec.training.exits import evaluate as exits_report
from gnuradio.modrec.training.metrics import classification_metrics
from gnuradio.modrec.training.model_card import model_name, render_model_card
from gnuradio.modrec.training.prune import report as prune_report
from gnuradio.modrec.training.report import figure_accuracy_vs_snr
from gnuradio.modrec.training.tables_and_figures import line_styles, pyplot, save_figure

SNRS = [-10.0, 0.0, 10.0, 18.0]
ARCHITECTURES = ("cnn3", "mobilenet1d", "mini_inception_resnet")
METHODS = ("none", "kd", "skd", "nkd")


def _line(handle):
    return handle.lines[0] if hasattr(handle, "lines") else handle  # an errorbar's data line


def looks(ax):
    """How each labelled line of ``ax`` looks: colour, line style, marker, marker fill."""
    out = []
    for handle, label in zip(*ax.get_legend_handles_labels()):
        line = _line(handle)
        if line.get_marker() == "*" and label == "unpruned":
            continue
        out.append((mcolors.to_hex(line.get_color()), line.get_linestyle(), line.get_marker(),
                    mcolors.to_hex(line.get_markerfacecolor())))
    return out


def assert_legends_hide_nothing_and_are_saved(fig, path):
    renderer = fig.canvas.get_renderer()
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend()] + list(fig.legends)
    assert legends, "the figure has no legend"
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            assert not box.overlaps(ax.get_window_extent(renderer)), f"a legend covers the axes {ax.get_title()!r}"
    tight = fig.get_tightbbox(renderer)  # inches: every artist, the legends placed outside included
    save_figure(fig, path)
    height, width = matplotlib.image.imread(path).shape[:2]
    assert width >= tight.width * 120 and height >= tight.height * 120, "the saved image cuts part of the figure"


# --- the shared style rule ---------------------------------------------------------------------

def test_line_styles_keep_every_line_apart_and_share_properties_by_key():
    keys = [("inception_resnet", "none", "none")] + [(a, m, m) for a in ARCHITECTURES for m in METHODS]
    styles = line_styles(keys)
    look = [(mcolors.to_hex(s["color"]), str(s["linestyle"]), s["marker"], s["markerfacecolor"] != s["color"]) for s in styles]
    assert len(set(look)) == len(keys)
    by_arch = {}
    for (arch, method, _), s in zip(keys, styles):
        assert by_arch.setdefault(arch, s["color"]) == s["color"]  # colour by architecture
    assert len({mcolors.to_hex(s["color"]) for s in styles}) == 4
    assert {str(s["linestyle"]) for (_, m, _), s in zip(keys, styles) if m == "kd"} == {"--"}  # line style by method
    # lines whose keys coincide still look different; many colour keys get as many colours
    repeated = line_styles([("a", "x", "x")] * 5)
    assert len({(str(s["linestyle"]), s["marker"]) for s in repeated}) == 5
    many = line_styles([(f"arch{k}", "", "") for k in range(25)])
    assert len({mcolors.to_hex(s["color"]) for s in many}) == 25
    # panels: a key keeps its look in every panel; within a panel repeated keys are kept apart
    panelled = line_styles([("heads", "1", "1"), ("heads", "1", "1"), ("heads", "1", "1")], panels=["a", "b", "b"])
    assert panelled[0] == panelled[1] != panelled[2]
    hollow = line_styles([("s", "1", "1", "entropy"), ("s", "1", "1", "gate")])
    assert hollow[0]["markerfacecolor"] == hollow[0]["color"] and hollow[1]["markerfacecolor"] == "white"


# --- the three study figures -------------------------------------------------------------------

def comparison_entries():
    rng = np.random.default_rng(0)
    rows = [("inception_resnet", "inception_resnet", "none", "teacher")]
    rows += [(a if m == "none" else f"{a}-{m}", a, m, "student") for a in ARCHITECTURES for m in METHODS]
    return [{"name": name, "architecture": arch, "distillation": method, "role": role,
             "per_snr": [(s, min(1.0, 0.5 + s / 40 + 0.02 * rng.standard_normal())) for s in SNRS]}
            for name, arch, method, role in rows]


def test_the_accuracy_vs_snr_comparison_draws_every_model_apart_and_its_legend_outside(tmp_path):
    entries = comparison_entries()
    fig = figure_accuracy_vs_snr(entries)
    ax = fig.axes[0]
    assert len(looks(ax)) == len(entries) == len(set(looks(ax)))
    assert_legends_hide_nothing_and_are_saved(fig, tmp_path / "accuracy_vs_snr.png")


def early_exit_results():
    names = ["cnn3_ee-p1", "cnn3_ee-p2", "cnn3_ee-joint-p1", "cnn3_ee-joint-p2", "cnn3_ee-convhead-p1",
             "cnn3_ee-two_phase-p1", "mobilenet1d_ee-p1", "mobilenet1d_ee-p4", "mobilenet1d_ee-joint-p4",
             "mobilenet1d_ee-convhead-p4", "mobilenet1d_ee-convhead-p4-gate", "mini_inception_resnet_ee-convhead-p1",
             "mini_inception_resnet_ee-convhead-p1-gate"]
    return [{"model": f"runs/{n}/{n}.onnx", "policy": "gate" if n.endswith("-gate") else "entropy",
             "per_snr": [{"snr_db": s, "exit_rates": [0.1 * k, 1 - 0.1 * k], "accuracy": 0.5, "plain_accuracy": 0.5,
                          "speed_up": 1.0 + 0.01 * k, "ms_per_frame": 1.0, "plain_ms_per_frame": 1.0} for s in SNRS]}
            for k, n in enumerate(names)]


def test_the_early_exit_figure_has_a_row_per_architecture_with_its_legend_beside_it(tmp_path):
    fig = exits_report.figure(early_exit_results())
    rows = [fig.axes[3 * k:3 * k + 3] for k in range(3)]
    assert [row[0].get_title(loc="left") for row in rows] == list(ARCHITECTURES)
    for row in rows:
        for ax in row:
            assert len(set(looks(ax))) == len(looks(ax))
    # a training scheme has one colour in every row: convhead in cnn3 and in mobilenet1d
    colour = {label: _line(h).get_color() for row in rows for h, label in zip(*row[0].get_legend_handles_labels())}
    assert colour["cnn3_ee-convhead-p1 (entropy)"] == colour["mobilenet1d_ee-convhead-p4 (entropy)"]
    assert_legends_hide_nothing_and_are_saved(fig, tmp_path / "early_exit.png")


def pruning_rows():
    base = {"name": "cnn3", "architecture": "cnn3", "criterion": "none", "strategy": "-", "fine_tune": "", "ratio": 0.0,
            "flops": 3.75e6, "accuracy": 0.47, "accuracy_snr_ge_10": 0.76}
    rows = [base]
    for c, criterion in enumerate(("bn-gamma", "gamma-redundancy", "l1", "random")):
        for strategy, fine_tune in (("local", "2 ep"), ("global", "2 ep"), ("local", "10 ep + kd")):
            for ratio in (0.3, 0.5, 0.7):
                rows.append({**base, "name": f"cnn3-{criterion}-{ratio}", "criterion": criterion, "strategy": strategy,
                             "fine_tune": fine_tune, "ratio": ratio, "flops": 3.75e6 * (1 - ratio) ** 2,
                             "accuracy": 0.47 - 0.2 * ratio ** 2 - 0.01 * c, "accuracy_std": 0.002,
                             "accuracy_snr_ge_10": 0.76 - 0.3 * ratio ** 2, "accuracy_snr_ge_10_std": 0.003})
    return rows


def test_the_pruning_figure_draws_every_line_apart_and_its_legend_outside(tmp_path):
    fig = prune_report.figure("cnn3", pruning_rows())
    for ax in fig.axes:
        assert len(looks(ax)) == 12 == len(set(looks(ax)))
    assert_legends_hide_nothing_and_are_saved(fig, tmp_path / "pruning-cnn3.png")


# --- one model's evaluation: the second confusion matrix, the model's name ---------------------

def test_metrics_give_a_confusion_matrix_at_snr_ge_10():
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    snr = np.array([-10, -10, -10, 0, 0, 10, 10, 18], float)
    pred = np.array([0, 2, 1, 0, 1, 2, 0, 0])
    m = classification_metrics(pred, y, snr, ["A", "B", "C"])
    assert m["confusion_snr_ge_10"] == [[1, 0, 0], [1, 0, 0], [0, 0, 1]]  # the frames at 10 and 18 dB
    assert np.sum(m["confusion"]) == 8
    assert classification_metrics(pred, y, np.full(8, np.nan), ["A", "B", "C"])["confusion_snr_ge_10"] is None


def write_dataset(root, classes, frame_len, per_class_snr=4, seed=0):
    rng = np.random.default_rng(seed)
    (root / "test").mkdir(parents=True)
    n = per_class_snr * len(classes) * len(SNRS)
    meta = {"classes": list(classes), "frame_len": frame_len, "samples_per_symbol": 8, "snrs_db": SNRS, "seed": seed,
            "format_version": FORMAT_VERSION, "shards": {"test": 1}, "counts": {"test": n},
            "frames_per_class_snr": {"test": per_class_snr}}
    (root / "meta.json").write_text(json.dumps(meta))
    y = np.repeat(np.arange(len(classes)), per_class_snr * len(SNRS))
    snr = np.tile(np.repeat(np.array(SNRS, np.float32), per_class_snr), len(classes))
    x = rng.standard_normal((n, 2, frame_len)).astype(np.float32)
    np.savez(root / "test" / "shard-00000.npz", x=x, y=y, snr_db=snr)
    return root


@pytest.fixture
def evaluated(tmp_path, monkeypatch):
    """A fixture model (architecture fixture-linear) saved as my-model.onnx, evaluated: the
    summary and the title of every figure the evaluation drew."""
    onnx_path = fx.save_model(tmp_path / "my-model.onnx", frame_len=32)
    data = write_dataset(tmp_path / "data", fx.FIXTURE_CLASSES, 32)
    titles = {}
    real = ev.save_figure

    def spy(fig, path):
        titles[Path(path).name] = fig.axes[0].get_title()
        real(fig, path)

    monkeypatch.setattr(ev, "save_figure", spy)
    summary = ev.evaluate(tmp_path / "eval", onnx_path=onnx_path, data=str(data), latency=False, progress=False,
                          log=lambda *a: None)
    return tmp_path, summary, titles


def test_an_evaluations_figures_carry_the_models_name_not_its_architecture(evaluated):
    tmp_path, summary, titles = evaluated
    assert summary["architecture"] == "fixture-linear" and summary["name"] == "my-model"
    assert set(titles) == {"accuracy_vs_snr.png", "confusion.png", "confusion_snr_ge_10.png"}
    for title in titles.values():
        assert title.startswith("my-model ") and "fixture-linear" not in title
    assert "all SNRs" in titles["confusion.png"] and "SNR ≥ 10 dB" in titles["confusion_snr_ge_10.png"]
    # 5 classes x 2 SNRs >= 10 dB x 4 frames
    assert np.sum(summary["confusion_snr_ge_10"]) == 40 and np.sum(summary["confusion"]) == 80
    saved = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert saved["figures"]["confusion_snr_ge_10"] == "confusion_snr_ge_10.png"
    assert (tmp_path / "eval" / "confusion_snr_ge_10.png").is_file()


def test_a_card_is_titled_with_the_models_name_and_shows_both_confusion_matrices(evaluated):
    tmp_path, _, _ = evaluated
    summary_path = str(tmp_path / "eval" / "summary.json")
    card = tmp_path / "card.md"
    assert main(["card", "--summary", summary_path, "--out", str(card)]) == 0
    text = card.read_text()
    assert text.startswith("# my-model\n")  # not "card", the file's stem
    for fig in ("accuracy_vs_snr.png", "confusion.png", "confusion_snr_ge_10.png"):
        assert f"](card-{fig})" in text and (tmp_path / f"card-{fig}").is_file()
    assert "--card models/my-model.md" not in text or "--force" in text
    assert main(["card", "--summary", summary_path, "--out", str(card), "--name", "chosen", "--force"]) == 0
    assert card.read_text().startswith("# chosen\n")


def test_the_model_name_of_older_summaries():
    assert model_name({"model": "/work/main/models/cnn3-kd.onnx", "architecture": "cnn3"}) == "cnn3-kd"
    assert model_name({"model": "runs/x/best.pt", "training": {"config": {"experiment": "cnn3-skd"}}}) == "cnn3-skd"
    assert model_name({"model": "runs/cnn3-nkd/best.pt"}) == "cnn3-nkd"
    assert model_name({"name": "given", "model": "models/other.onnx"}) == "given"
    assert model_name({"accuracy": 0.5, "training": {"config": {"experiment": "x"}}}) is None  # the card: its stem


def test_a_card_of_a_summary_without_the_high_snr_matrix_links_no_such_figure():
    summary = {"accuracy": 0.5, "per_snr": [], "classes": ["A"], "figures": {"confusion": "confusion.png"}}
    text = render_model_card(summary, "m")
    assert "](confusion.png)" in text and "confusion_snr_ge_10" not in text
    summary["figures"]["confusion_snr_ge_10"] = "confusion_snr_ge_10.png"
    assert "](confusion_snr_ge_10.png)" in render_model_card(summary, "m")


def test_pyplot_is_headless():
    assert pyplot().get_backend().lower() == "agg"

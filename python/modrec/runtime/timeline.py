"""Timeline PNG of a classified recording: its spectrogram with the class segments drawn over it.

The spectrogram takes one pass over the recording in bounded chunks and keeps at most
``max_columns`` time columns, each the mean periodogram of the windows in its span, so a
multi-GB file costs a few MB. matplotlib is imported lazily and drawn on its Agg canvas
(``Figure`` + ``FigureCanvasAgg``): no pyplot, no change to the caller's backend.
"""

import os
from pathlib import Path

import numpy as np

from ..classes import UNKNOWN_CLASS

MAX_COLUMNS = 2000
NFFT = 256
_LABELS_DRAWN = 40  # text labels on the widest segments only; more would overprint
# Windows transformed at once: the FFT and its temporaries stay a few MB whatever the read size.
_FFT_BLOCK_SAMPLES = 1 << 16


def spectrogram_columns(recording, max_columns=MAX_COLUMNS, nfft=NFFT, chunk_samples=1 << 20):
    """Mean power spectral density of each time column of a recording.

    The recording is cut into back-to-back windows of ``nfft`` samples (Hann; a trailing partial
    window is dropped; nfft shrinks to the recording's length when that is shorter). Window j of
    n goes to column ``j * M // n``, M = min(max_columns, n), and a column is the mean of its
    windows' periodograms. ``chunk_samples`` bounds the samples read at a time.

    Returns ``(span_s, freqs_hz, psd)``: span_s (float) the seconds the columns cover (n * nfft
    / sample rate), freqs_hz float64 (nfft,) ascending, relative to the centre frequency, psd
    float64 (nfft, M) in power per Hz (linear; M = 0 for an empty recording). ValueError for
    max_columns, nfft or chunk_samples below 1.
    """
    from scipy import fft as sfft
    from scipy.signal import get_window

    for name, value in (("max_columns", max_columns), ("nfft", nfft), ("chunk_samples", chunk_samples)):
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
    rate = recording.sample_rate
    nfft = int(max(1, min(nfft, recording.n_samples)))
    freqs = sfft.fftshift(sfft.fftfreq(nfft, 1.0 / rate))
    n_windows = recording.n_samples // nfft
    if n_windows == 0:
        return 0.0, freqs, np.zeros((nfft, 0))
    columns = min(int(max_columns), n_windows)
    window = get_window("hann", nfft).astype(np.float32) if nfft > 1 else np.ones(1, np.float32)
    scale = 1.0 / (rate * float(np.sum(window.astype(np.float64) ** 2)))
    acc = np.zeros((columns, nfft))
    counts = np.zeros(columns)
    done = 0  # windows accumulated so far
    # Chunks are whole numbers of windows, so windows never straddle two chunks.
    for _, chunk in recording.iter_chunks(max(1, int(chunk_samples) // nfft) * nfft):
        k = min(chunk.shape[0] // nfft, n_windows - done)
        _accumulate(chunk[: max(k, 0) * nfft].reshape(-1, nfft), window, done, columns, n_windows, acc, counts)
        done += max(k, 0)
        del chunk  # not alive during the next read
    acc /= counts[:, None]
    acc *= scale
    psd = sfft.fftshift(acc, axes=1).T
    return n_windows * nfft / rate, freqs, psd


def _accumulate(windows, window, first_window, columns, n_windows, acc, counts):
    """Add the periodograms of ``windows`` (k, nfft), window indices first_window.., to their columns.

    A function so that its views of the chunk die with it, before the next chunk is read.
    """
    from scipy import fft as sfft

    block = max(1, _FFT_BLOCK_SAMPLES // windows.shape[1])  # windows per FFT call
    for lo in range(0, windows.shape[0], block):
        part = windows[lo : lo + block]
        power = np.abs(sfft.fft(part * window, axis=1)) ** 2
        col = (first_window + lo + np.arange(part.shape[0])) * columns // n_windows
        first = np.flatnonzero(np.r_[True, col[1:] != col[:-1]])
        acc[col[first]] += np.add.reduceat(power, first, axis=0)
        counts[col[first]] += np.diff(np.r_[first, part.shape[0]])


def _colours(result):
    """class name -> colour: tab10 (tab20 beyond nine classes) in the model's class order without
    its greys, grey for unknown (so no class looks like unknown)."""
    from matplotlib import colormaps

    if len(result.classes) <= 9:
        cmap, order = colormaps["tab10"], [i for i in range(10) if i != 7]  # 7: grey
    else:
        # tab20 comes in dark/light pairs of one hue: take the dark ones first, so that
        # neighbouring classes (and the first nine of any list) never share a hue; 14, 15: greys
        cmap, order = colormaps["tab20"], [i for i in [*range(0, 20, 2), *range(1, 20, 2)] if i not in (14, 15)]
    colours = {name: cmap(order[i % len(order)]) for i, name in enumerate(result.classes)}
    colours[UNKNOWN_CLASS] = (0.55, 0.55, 0.55, 1.0)
    return colours


def plot_timeline(result, path, max_columns=MAX_COLUMNS, nfft=NFFT, chunk_samples=None):
    """Write a PNG of ``result`` (a ``classify.RecordingClassification``) to ``path``; return its Path.

    The spectrogram (``spectrogram_columns``; dB per Hz) has time in seconds on x and frequency
    in Hz on y: absolute when the recording's ``core:frequency`` is known, else relative to the
    centre. Each merged segment is a translucent band over it plus a solid strip at the top, one
    colour per class (legend below), the widest labelled with their class. Title: recording and
    model. chunk_samples: samples read at a time (default ``result.chunk_samples``). OSError
    when the file cannot be written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import EngFormatter

    recording = result.recording
    rate = recording.sample_rate
    chunk_samples = result.chunk_samples if chunk_samples is None else chunk_samples
    span, freqs, psd = spectrogram_columns(recording, max_columns, nfft, chunk_samples)
    centre = recording.center_frequency
    y = freqs + (centre or 0.0)
    half_bin = rate / len(freqs) / 2

    fig = Figure(figsize=(12, 5.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if psd.shape[1]:
        with np.errstate(divide="ignore", invalid="ignore"):
            # float32: matplotlib keeps several copies of the image array while drawing.
            db = (10 * np.log10(np.maximum(psd, 1e-30))).astype(np.float32)
        finite = db[np.isfinite(db)]
        limits = (np.percentile(finite, 5), finite.max()) if finite.size else (None, None)
        image = ax.imshow(db, origin="lower", aspect="auto", interpolation="nearest", cmap="viridis",
                          extent=(0.0, span, y[0] - half_bin, y[-1] + half_bin), vmin=limits[0], vmax=limits[1])
        fig.colorbar(image, ax=ax, label="PSD (dB/Hz)", pad=0.01)
    ax.set_xlim(0.0, max(recording.duration, 1.0 / rate))
    ax.set_ylim(y[0] - half_bin, y[-1] + half_bin)
    ax.yaxis.set_major_formatter(EngFormatter(unit="Hz"))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz)" if centre is not None else "frequency relative to centre (Hz)")

    colours = _colours(result)
    spans = {}
    for seg in result.segments:
        spans.setdefault(seg.label, []).append((seg.start / rate, seg.count / rate))
    band = ax.get_xaxis_transform()  # x in seconds, y in axes fractions: bands span the height
    for label, ranges in spans.items():
        ax.broken_barh(ranges, (0.0, 1.0), transform=band, facecolor=colours.get(label), alpha=0.2, linewidth=0)
        ax.broken_barh(ranges, (0.94, 0.06), transform=band, facecolor=colours.get(label), linewidth=0)
    widest = sorted(result.segments, key=lambda s: -s.count)[:_LABELS_DRAWN]
    for seg in widest:
        if seg.count >= 0.04 * recording.n_samples:
            ax.text((seg.start + seg.count / 2) / rate, 0.97, seg.label, transform=band, ha="center", va="center",
                    fontsize=8, color="white", fontweight="bold", clip_on=True)
    handles = [Patch(facecolor=colours[label], label=label) for label in (*result.classes, UNKNOWN_CLASS)
               if label in spans]
    if handles:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=min(len(handles), 8),
                  fontsize=8, frameon=False)
    hop_note = "" if result.hop == result.frame_len else f", hop {result.hop}"
    ax.set_title(f"{Path(recording.data_path).name}: model {result.model_name} "
                 f"({result.n_frames} frames of {result.frame_len}{hop_note})")
    path = Path(os.fspath(path))
    fig.savefig(path, dpi=100, format="png")
    return path

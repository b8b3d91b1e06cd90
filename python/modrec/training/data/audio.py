"""Procedural speech-like and music-like audio for the analog classes (no files, seeded).

Speech follows the source-filter model: a glottal pulse train with a wandering pitch contour
is shaped by three formant resonators per syllable, with syllable envelopes, unvoiced
(fricative) syllables, short gaps between syllables and longer pauses between phrases.
Music is a few polyphonic voices of harmonic notes with decaying envelopes. Pauses are kept
as they are: in RadioML an AM-DSB or WBFM frame cut from a pause is an unmodulated carrier,
and a classifier has to live with that ambiguity.
"""

import numpy as np
from scipy.signal import lfilter, sosfilt, butter

AUDIO_RATE = 16000.0  # Hz; the pool is band-limited below 8 kHz like wideband speech

# Relative weights of segment kinds in a pool.
_KINDS = ("speech", "music", "pause")
_KIND_P = np.array([0.65, 0.2, 0.15])


def _resonator_sos(freqs, bws, fs):
    """Cascade of two-pole resonators, each with unity gain at DC-normalised peak."""
    sos = []
    for f, b in zip(freqs, bws):
        r = np.exp(-np.pi * b / fs)
        th = 2 * np.pi * f / fs
        a1, a2 = -2 * r * np.cos(th), r * r
        # Normalise the peak to ~1 so formant amplitudes stay comparable across syllables.
        g = (1 - r) * np.sqrt(1 - 2 * r * np.cos(2 * th) + r * r)
        sos.append([g, 0.0, 0.0, 1.0, a1, a2])
    return np.array(sos)


def _speech(rng, n, fs):
    """One phrase group of n samples: syllables, inter-syllable gaps and pauses."""
    out = np.zeros(n)
    t = np.arange(n) / fs
    # Speaker: fundamental range covers low male to child voices.
    f0_base = rng.uniform(80.0, 280.0)
    contour = (
        1.0
        + rng.uniform(0.03, 0.2) * np.sin(2 * np.pi * rng.uniform(0.3, 3.0) * t + rng.uniform(0, 2 * np.pi))
        - rng.uniform(0.0, 0.15) * t / max(t[-1], 1e-3)
    )
    f0 = f0_base * contour
    phase = np.cumsum(f0 / fs) + rng.uniform()
    pulses = np.diff(np.floor(phase), prepend=np.floor(phase[0])).astype(np.float64)
    # Glottal flow ~ -12 dB/octave; lip radiation +6 dB/octave (first difference).
    a = rng.uniform(0.9, 0.985)
    glottal = lfilter([1.0], [1.0, -2 * a, a * a], pulses)
    glottal = np.diff(glottal, prepend=0.0)
    glottal *= 1.0 + 0.02 * rng.standard_normal(n)  # shimmer
    noise = rng.standard_normal(n)
    pos = int(rng.uniform(0, 0.05) * fs)
    while pos < n:
        dur = int(rng.uniform(0.07, 0.32) * fs)
        end = min(n, pos + dur)
        m = end - pos
        if m < 16:
            break
        if rng.uniform() < 0.8:
            src = glottal[pos:end] + rng.uniform(0.0, 0.05) * noise[pos:end]  # breathiness
            freqs = (rng.uniform(250, 900), rng.uniform(800, 2400), rng.uniform(2000, 3600))
            bws = (rng.uniform(50, 150), rng.uniform(70, 200), rng.uniform(100, 300))
            gain = rng.uniform(0.4, 1.0)
        else:
            src = noise[pos:end]
            freqs = (rng.uniform(2500, 6500), rng.uniform(3500, 7000))
            bws = (rng.uniform(500, 2000), rng.uniform(800, 2500))
            gain = rng.uniform(0.05, 0.3)
        seg = sosfilt(_resonator_sos(freqs, bws, fs), src)
        seg /= np.sqrt(np.mean(seg**2)) + 1e-12
        att = max(2, int(rng.uniform(0.005, 0.04) * fs))
        dec = max(2, int(rng.uniform(0.02, 0.1) * fs))
        env = np.ones(m)
        k = min(att, m)
        env[:k] = 0.5 - 0.5 * np.cos(np.pi * np.arange(k) / k)
        k = min(dec, m)
        env[m - k:] *= 0.5 + 0.5 * np.cos(np.pi * np.arange(k) / k)
        out[pos:end] += gain * env * seg
        gap = rng.uniform(0.0, 0.08) if rng.uniform() < 0.8 else rng.uniform(0.15, 0.7)
        pos = end + int(gap * fs)
    return out


def _music(rng, n, fs):
    """1-3 voices of harmonic notes with plucked/sustained envelopes."""
    out = np.zeros(n)
    for _ in range(rng.integers(1, 4)):
        pos = 0
        base = rng.integers(40, 80)
        decay = rng.uniform(0.05, 0.8)
        tilt = rng.uniform(0.7, 2.0)
        while pos < n:
            dur = int(rng.uniform(0.08, 0.6) * fs)
            end = min(n, pos + dur)
            m = end - pos
            midi = base + rng.integers(-7, 13)
            f = 440.0 * 2.0 ** ((midi - 69) / 12.0)
            h = np.arange(1, 9)
            h = h[h * f < 0.45 * fs]
            tt = np.arange(m) / fs
            partials = np.sin(2 * np.pi * f * np.outer(h, tt) + rng.uniform(0, 2 * np.pi, (len(h), 1)))
            note = (h[:, None] ** -tilt * partials).sum(0)
            env = np.exp(-tt / decay) * np.minimum(1.0, tt / 0.005)
            out[pos:end] += rng.uniform(0.3, 1.0) * env * note
            pos = end + (int(rng.uniform(0.0, 0.3) * fs) if rng.uniform() < 0.2 else 0)
    return out


def audio_pool(rng, n_samples, fs=AUDIO_RATE):
    """Real audio of ``n_samples`` at ``fs``, peak-normalised to 1, with pauses and hiss.

    Returns float64 (n_samples + 4,), padded so 4-tap interpolation stays in range.
    """
    out = np.zeros(n_samples)
    pos = 0
    while pos < n_samples:
        kind = _KINDS[rng.choice(len(_KINDS), p=_KIND_P)]
        if kind == "pause":
            dur = int(rng.uniform(0.1, 1.0) * fs)
        else:
            dur = int(rng.uniform(0.5, 2.5) * fs)
        end = min(n_samples, pos + dur)
        if kind == "speech":
            seg = _speech(rng, end - pos, fs)
        elif kind == "music":
            seg = _music(rng, end - pos, fs)
        else:
            seg = None
        if seg is not None:
            rms = np.sqrt(np.mean(seg**2))
            if rms > 0:
                # Loudness varies between talkers/programmes by ~15 dB.
                out[pos:end] = seg / rms * 10 ** (rng.uniform(-15, 0) / 20)
        pos = end
    # Channel bandwidth from telephone-like to wideband.
    cutoff = rng.uniform(3400.0, 7500.0)
    out = sosfilt(butter(6, cutoff / (fs / 2), output="sos"), out)
    peak = np.max(np.abs(out))
    if peak > 0:
        out /= peak
    # Room/line hiss keeps pauses from being exactly zero.
    out += 10 ** (rng.uniform(-60, -40) / 20) * rng.standard_normal(n_samples)
    out /= max(1.0, np.max(np.abs(out)))
    return np.concatenate([out, np.zeros(4)])


def preemphasis(x, rng, fs=AUDIO_RATE):
    """FM broadcast pre-emphasis (50 or 75 us) with a high-frequency shelf, re-normalised."""
    tau = 75e-6 if rng.uniform() < 0.5 else 50e-6
    a = np.exp(-1.0 / (tau * fs))
    b = np.exp(-1.0 / (12e-6 * fs))  # shelf keeps the boost finite at high audio frequencies
    y = lfilter([1.0, -a], [1.0, -b], x)
    return y / (np.max(np.abs(y)) + 1e-12)

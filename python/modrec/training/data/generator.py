"""Synthetic AMR frames: configuration and vectorised per-class frame synthesis.

SNR definition
--------------
For each frame, SNR = P_s / N where P_s is the mean power of the noise-free received signal
over the frame's samples (after fading, frequency offset and IQ imbalance) and N is the total
power per complex sample of the additive white Gaussian noise across the full sampled
bandwidth (N/2 per I and Q). This is the per-sample complex-baseband SNR that RadioML uses;
the in-band Es/N0 of a digital signal is higher by about 10*log10(samples_per_symbol).

The one exception is a pause in analog audio: an AM-SSB frame cut from silence carries
(almost) no signal, and scaling noise to its residual hiss would invent a signal. The
reference power is therefore never below ``analog_silence_floor_db`` relative to the
channel's power gain times the source's long-term power (1), so a pause stays a pause.

Every impairment parameter is drawn per frame; see GeneratorConfig for the ranges.
"""

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from ...classes import DEFAULT_FRAME_LEN, DEFAULT_SAMPLES_PER_SYMBOL, NOISE_LABEL, RADIOML2016_CLASSES, RADIOML2016_SNRS_DB
from . import audio, channel, modulators as mod, open_set, receiver_noise

# What a model can be trained to name: the modulations, and "noise" (no signal in the frame).
TRAINING_CLASSES = mod.SUPPORTED_CLASSES + (NOISE_LABEL,)

# Frames are synthesised in chunks of this many rows to bound temporary memory (the gathers
# create several (chunk, frame_len + lead) arrays).
CHUNK = 1024


@dataclass(frozen=True)
class GeneratorConfig:
    """Frame format and per-frame randomisation ranges. All (lo, hi) ranges are inclusive.

    Frame format
      classes             names from TRAINING_CLASSES, index i = label i: the modulations
                          (SUPPORTED_CLASSES) and ``noise`` (frames with no signal,
                          data/receiver_noise.py; their SNR label means nothing)
      frame_len           complex samples per frame, 16..65536
      samples_per_symbol  nominal oversampling of the digital classes, 2..64
      snrs_db             SNR grid (dB) used by dataset builds, each in [-50, 80]
    Transmitter
      sps_jitter          relative spread of the oversampling: sps * U(1-x, 1+x), 0..0.25
      clock_offset_ppm    extra sample-clock offset, U(-x, x) ppm, 0..10000
      clock_drift_std     the sample-clock offset's random walk within a frame: a Gaussian step
                          of this std (fraction of the rate, e.g. 1e-6 = 1 ppm) per sample, as in
                          GNU Radio's channels.sro_model, 0..1e-3
      rolloff_range       RRC roll-off of PSK/PAM/QAM, within [0.05, 1]
      cpfsk_index_range   CPFSK modulation index h, within [0.1, 2]
      gfsk_index_range    GFSK modulation index h, within [0.1, 2]
      gfsk_bt_range       GFSK Gaussian bandwidth-time product, within [0.1, 1]
      am_depth_range      AM-DSB modulation depth (audio peak = 1), within [0.01, 1]
      ssb_carrier_range   AM-SSB residual carrier amplitude (audio peak = 1), within [0, 1]
      wbfm_deviation_range  WBFM peak deviation, cycles/sample, within [0.001, 0.5]
      audio_ratio_range   audio samples (16 kHz) per frame sample, within [0.005, 1];
                          0.08 = 16 kHz audio at 200 kHz like RadioML's analog classes
      audio_compression_range  broadcast-style limiter drive g, m -> tanh(g m)/tanh(g),
                          drawn log-uniformly per audio pool, within [1, 100]
    Channel
      fading_prob         fraction of frames with multipath fading (rest: flat, no Doppler)
      max_taps            taps of a faded channel are drawn from 1..max_taps, 1..16
      max_delay_samples   largest tap delay (samples) of the per-frame delay spread, 0..256
      fractional_delays   tap delays are any real value (windowed-sinc interpolated, as GNU Radio's
                          selective fading model and 3GPP's TDL profiles place them) instead of
                          whole samples
      rayleigh_prob       fraction of faded frames without line of sight (Rayleigh), 0..1
      rician_k_db_range   Rician K factor of the first tap otherwise, within [-30, 40] dB
      doppler_range       maximum Doppler shift, cycles/sample, within [0, 0.05]
      cfo_max             carrier frequency offset U(-x, x), cycles/sample, 0..0.25
      cfo_drift_std       the carrier offset's random walk within a frame: a Gaussian step of this
                          std (cycles/sample) per sample, as in GNU Radio's channels.cfo_model, 0..1e-3
      phase_noise_range   std of the phase random walk per sample (rad), within [0, 0.5]
      iq_gain_imbalance_db  receiver IQ gain imbalance U(-x, x) dB, 0..6
      iq_phase_imbalance_deg  receiver IQ phase imbalance U(-x, x) degrees, 0..30
      gain_db_range       overall receiver gain applied to signal plus noise, within [-100, 100]
      analog_silence_floor_db  see the module docstring, within [-60, 0]
      coloured_noise_prob  fraction of frames whose noise went through a receiver channel
                          filter around the signal (receiver_noise.coloured_noise, centred,
                          cutoff from coloured_noise_cutoff), as after a narrow channel filter
                          or resampling a stream up; the SNR is that of the coloured noise, 0..1
      coloured_noise_cutoff  that filter's cutoff U(lo, hi), fractions of Nyquist, within
                          [0.05, 0.95] (default receiver_noise.SIGNAL_CHANNEL_CUTOFF, 0.25-0.95)
    """

    classes: tuple = RADIOML2016_CLASSES
    frame_len: int = DEFAULT_FRAME_LEN
    samples_per_symbol: int = DEFAULT_SAMPLES_PER_SYMBOL
    snrs_db: tuple = RADIOML2016_SNRS_DB
    sps_jitter: float = 0.05
    clock_offset_ppm: float = 100.0
    rolloff_range: tuple = (0.15, 0.5)
    cpfsk_index_range: tuple = (0.4, 1.0)
    gfsk_index_range: tuple = (0.3, 0.8)
    gfsk_bt_range: tuple = (0.25, 0.5)
    am_depth_range: tuple = (0.3, 1.0)
    ssb_carrier_range: tuple = (0.0, 0.1)
    wbfm_deviation_range: tuple = (0.05, 0.35)
    audio_ratio_range: tuple = (0.04, 0.25)
    audio_compression_range: tuple = (1.0, 20.0)
    fading_prob: float = 0.7
    max_taps: int = 4
    max_delay_samples: int = 16
    rayleigh_prob: float = 0.3
    rician_k_db_range: tuple = (-5.0, 15.0)
    doppler_range: tuple = (0.0, 0.002)
    cfo_max: float = 0.01
    phase_noise_range: tuple = (0.0, 0.01)
    iq_gain_imbalance_db: float = 0.5
    iq_phase_imbalance_deg: float = 3.0
    gain_db_range: tuple = (-20.0, 20.0)
    analog_silence_floor_db: float = -20.0
    coloured_noise_prob: float = 0.0
    coloured_noise_cutoff: tuple = receiver_noise.SIGNAL_CHANNEL_CUTOFF
    fractional_delays: bool = False
    cfo_drift_std: float = 0.0
    clock_drift_std: float = 0.0

    def __post_init__(self):
        # Lists from JSON (meta.json) become tuples so configs compare and hash consistently.
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                object.__setattr__(self, f.name, tuple(value))
        self.validate()

    def validate(self):
        classes = self.classes
        if isinstance(classes, str) or not isinstance(classes, tuple) or not classes:
            raise ValueError(f"GeneratorConfig.classes: expected a non-empty sequence of class names, got {classes!r}")
        unknown = [c for c in classes if c not in TRAINING_CLASSES]
        held_out = [c for c in unknown if c in open_set.OPEN_SET_MODULATIONS]
        if held_out:
            raise ValueError(f"GeneratorConfig.classes: {held_out} are open-set modulations, kept out of training "
                             f"to test that a model calls them unknown; expected names from {list(TRAINING_CLASSES)}")
        if unknown:
            raise ValueError(
                f"GeneratorConfig.classes: expected names from {list(TRAINING_CLASSES)}, got unknown {unknown}"
            )
        if len(set(classes)) != len(classes):
            raise ValueError(f"GeneratorConfig.classes: expected unique names, got {list(classes)}")
        _check_int("frame_len", self.frame_len, 16, 65536)
        _check_int("samples_per_symbol", self.samples_per_symbol, 2, 64)
        snrs = self.snrs_db
        if not isinstance(snrs, tuple) or not snrs:
            raise ValueError(f"GeneratorConfig.snrs_db: expected a non-empty sequence of dB values, got {snrs!r}")
        for s in snrs:
            _check_float("snrs_db", s, -50, 80)
        _check_float("sps_jitter", self.sps_jitter, 0, 0.25)
        _check_float("clock_offset_ppm", self.clock_offset_ppm, 0, 1e4)
        _check_range("rolloff_range", self.rolloff_range, 0.05, 1)
        _check_range("cpfsk_index_range", self.cpfsk_index_range, 0.1, 2)
        _check_range("gfsk_index_range", self.gfsk_index_range, 0.1, 2)
        _check_range("gfsk_bt_range", self.gfsk_bt_range, 0.1, 1)
        _check_range("am_depth_range", self.am_depth_range, 0.01, 1)
        _check_range("ssb_carrier_range", self.ssb_carrier_range, 0, 1)
        _check_range("wbfm_deviation_range", self.wbfm_deviation_range, 0.001, 0.5)
        _check_range("audio_ratio_range", self.audio_ratio_range, 0.005, 1)
        _check_range("audio_compression_range", self.audio_compression_range, 1, 100)
        _check_float("fading_prob", self.fading_prob, 0, 1)
        _check_int("max_taps", self.max_taps, 1, 16)
        _check_int("max_delay_samples", self.max_delay_samples, 0, 256)
        _check_float("rayleigh_prob", self.rayleigh_prob, 0, 1)
        _check_range("rician_k_db_range", self.rician_k_db_range, -30, 40)
        _check_range("doppler_range", self.doppler_range, 0, 0.05)
        _check_float("cfo_max", self.cfo_max, 0, 0.25)
        _check_range("phase_noise_range", self.phase_noise_range, 0, 0.5)
        _check_float("iq_gain_imbalance_db", self.iq_gain_imbalance_db, 0, 6)
        _check_float("iq_phase_imbalance_deg", self.iq_phase_imbalance_deg, 0, 30)
        _check_range("gain_db_range", self.gain_db_range, -100, 100)
        _check_float("analog_silence_floor_db", self.analog_silence_floor_db, -60, 0)
        _check_float("coloured_noise_prob", self.coloured_noise_prob, 0, 1)
        # firwin needs a cutoff below Nyquist; 0.95 is also receiver_noise's own upper limit
        _check_range("coloured_noise_cutoff", self.coloured_noise_cutoff, 0.05, 0.95)
        if not isinstance(self.fractional_delays, (bool, np.bool_)):
            raise ValueError(f"GeneratorConfig.fractional_delays: expected true or false, got {self.fractional_delays!r}")
        _check_float("cfo_drift_std", self.cfo_drift_std, 0, 1e-3)
        _check_float("clock_drift_std", self.clock_drift_std, 0, 1e-3)

    def to_dict(self):
        """JSON-ready dict (tuples become lists). Fields added after a dataset format was in use
        (_LATER_FIELDS) appear only when they differ from their default, so datasets built before
        them still match their configuration."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()
                if not (k in _LATER_FIELDS and v == _LATER_FIELDS[k])}

    @classmethod
    def from_dict(cls, values):
        """Inverse of to_dict; unknown keys are an error so typos do not pass silently."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"GeneratorConfig: unknown field(s) {unknown}; expected some of {sorted(names)}")
        return cls(**values)

    def clean(self):
        """The same frame format with every impairment switched off (for tests and plots)."""
        return GeneratorConfig(
            classes=self.classes,
            frame_len=self.frame_len,
            samples_per_symbol=self.samples_per_symbol,
            snrs_db=self.snrs_db,
            sps_jitter=0.0,
            clock_offset_ppm=0.0,
            fading_prob=0.0,
            doppler_range=(0.0, 0.0),
            cfo_max=0.0,
            phase_noise_range=(0.0, 0.0),
            iq_gain_imbalance_db=0.0,
            iq_phase_imbalance_deg=0.0,
            gain_db_range=(0.0, 0.0),
            rolloff_range=self.rolloff_range,
            cpfsk_index_range=self.cpfsk_index_range,
            gfsk_index_range=self.gfsk_index_range,
            gfsk_bt_range=self.gfsk_bt_range,
            am_depth_range=self.am_depth_range,
            ssb_carrier_range=self.ssb_carrier_range,
            wbfm_deviation_range=self.wbfm_deviation_range,
            audio_ratio_range=self.audio_ratio_range,
            audio_compression_range=self.audio_compression_range,
        )


# field -> default of the fields to_dict leaves out at their default
_LATER_FIELDS = {"coloured_noise_prob": 0.0, "coloured_noise_cutoff": receiver_noise.SIGNAL_CHANNEL_CUTOFF,
                 "fractional_delays": False, "cfo_drift_std": 0.0, "clock_drift_std": 0.0}


def _is_number(v):
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _check_int(name, v, lo, hi):
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or not lo <= v <= hi:
        raise ValueError(f"GeneratorConfig.{name}: expected an integer in [{lo}, {hi}], got {v!r}")


def _check_float(name, v, lo, hi):
    if not _is_number(v) or not math.isfinite(v) or not lo <= v <= hi:
        raise ValueError(f"GeneratorConfig.{name}: expected a number in [{lo}, {hi}], got {v!r}")


def _check_range(name, v, lo, hi):
    ok = (
        isinstance(v, tuple)
        and len(v) == 2
        and all(_is_number(x) and math.isfinite(x) for x in v)
        and lo <= v[0] <= v[1] <= hi
    )
    if not ok:
        raise ValueError(f"GeneratorConfig.{name}: expected (lo, hi) with {lo} <= lo <= hi <= {hi}, got {v!r}")


DEFAULT_CONFIG = GeneratorConfig()


# --------------------------------------------------------------------------------------------
# Transmitters: each returns (n, m) complex64 with unit long-term mean power.


def _symbol_times(n, m, rng, cfg):
    """Per-frame sample instants in symbol periods: random fractional timing and oversampling,
    and with clock_drift_std > 0 a sample clock whose offset walks within the frame."""
    sps = cfg.samples_per_symbol * rng.uniform(1 - cfg.sps_jitter, 1 + cfg.sps_jitter, size=n)
    step = (1 + rng.uniform(-1, 1, size=n) * cfg.clock_offset_ppm * 1e-6) / sps
    t0 = mod.TAPS / 2 + rng.uniform(size=n)
    t = t0[:, None] + step[:, None] * np.arange(m)[None, :]
    if cfg.clock_drift_std > 0:  # (no draw at 0: datasets built before the option stay as they were)
        t += step[:, None] * channel.offset_walk(n, m, cfg.clock_drift_std, rng)
    return t, mod.symbols_needed(t[:, -1].max())


def _tx_linear(name, n, m, rng, cfg):
    t, n_sym = _symbol_times(n, m, rng, cfg)
    points = mod.CONSTELLATIONS[name].astype(np.complex64)
    sym = points[rng.integers(0, len(points), size=(n, n_sym))]
    table, betas = mod.rrc_table(*cfg.rolloff_range)
    row = rng.integers(0, len(betas), size=n)
    return mod.linear_modulate(sym, t, table, row)


def _tx_fsk(name, n, m, rng, cfg):
    t, n_sym = _symbol_times(n, m, rng, cfg)
    bits = (2 * rng.integers(0, 2, size=(n, n_sym)) - 1).astype(np.int8)
    if name == "CPFSK":
        table, grid = mod.phase_pulse_table("rect", 0.0, 0.0)
        index = rng.uniform(*cfg.cpfsk_index_range, size=n)
    else:
        table, grid = mod.phase_pulse_table("gauss", *cfg.gfsk_bt_range)
        index = rng.uniform(*cfg.gfsk_index_range, size=n)
    row = rng.integers(0, len(grid), size=n)
    phase = mod.fsk_phase(bits, t, table, row, index)
    out = np.empty(phase.shape, dtype=np.complex64)
    out.real = np.cos(phase)
    out.imag = np.sin(phase)
    return out


def _audio_frames(n, m, rng, cfg, analytic=False, emphasis=False):
    """(n, m) audio message per frame at a per-frame audio/frame rate ratio, and its pool.

    One pool serves the whole chunk; frames start at independent random offsets in it.
    """
    ratio = rng.uniform(*cfg.audio_ratio_range, size=n)
    span = int(np.ceil(m * cfg.audio_ratio_range[1])) + 4
    # Pool long enough that frames rarely overlap while its synthesis cost stays small per frame.
    seconds = float(np.clip(0.5 + 0.004 * n, 1.0, 8.0))
    pool = audio.audio_pool(rng, int(seconds * audio.AUDIO_RATE) + span)
    if emphasis:
        pool = audio.preemphasis(pool, rng)
    # Broadcast audio is limited/compressed, which keeps the modulation busy between pauses.
    lo, hi = np.log(cfg.audio_compression_range)
    drive = np.exp(rng.uniform(lo, hi))
    pool = np.tanh(drive * pool) / np.tanh(drive)
    if analytic:
        from scipy.fft import next_fast_len
        from scipy.signal import hilbert

        pool = hilbert(pool, next_fast_len(len(pool)))[: len(pool)].astype(np.complex64)
    else:
        pool = pool.astype(np.float32)
    start = 1 + rng.uniform(size=n) * (len(pool) - span - 4)
    return mod.interpolate_audio(pool, start, ratio, m), pool


def _tx_am_dsb(n, m, rng, cfg):
    msg, pool = _audio_frames(n, m, rng, cfg)
    depth = rng.uniform(*cfg.am_depth_range, size=n).astype(np.float32)[:, None]
    power = 1 + depth**2 * float(np.mean(pool**2))
    out = np.zeros((n, m), dtype=np.complex64)
    out.real = (1 + depth * msg) / np.sqrt(power)
    return out


def _tx_am_ssb(n, m, rng, cfg):
    msg, pool = _audio_frames(n, m, rng, cfg, analytic=True)
    lower = rng.uniform(size=n) < 0.5
    msg[lower] = np.conj(msg[lower])
    carrier = rng.uniform(*cfg.ssb_carrier_range, size=n).astype(np.float32)[:, None]
    power = carrier**2 + float(np.mean(np.abs(pool) ** 2))
    return ((carrier + msg) / np.sqrt(power)).astype(np.complex64)


def _tx_wbfm(n, m, rng, cfg):
    msg, _ = _audio_frames(n, m, rng, cfg, emphasis=True)
    dev = rng.uniform(*cfg.wbfm_deviation_range, size=n).astype(np.float32)[:, None]
    phase = (2 * np.pi) * dev * np.cumsum(msg, axis=1)
    out = np.empty((n, m), dtype=np.complex64)
    out.real = np.cos(phase)
    out.imag = np.sin(phase)
    return out


def _transmit(name, n, m, rng, cfg):
    if name in mod.CONSTELLATIONS:
        return _tx_linear(name, n, m, rng, cfg)
    if name in mod.FSK_CLASSES:
        return _tx_fsk(name, n, m, rng, cfg)
    if name == "AM-DSB":
        return _tx_am_dsb(n, m, rng, cfg)
    if name == "AM-SSB":
        return _tx_am_ssb(n, m, rng, cfg)
    if name == "WBFM":
        return _tx_wbfm(n, m, rng, cfg)
    if name in open_set.OPEN_SET_MODULATIONS:
        return open_set.transmit(name, n, m, rng, cfg, _symbol_times)
    raise ValueError(f"class_name: expected one of {list(mod.SUPPORTED_CLASSES)}, got {name!r}")


# --------------------------------------------------------------------------------------------


def _as_rng(rng):
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer, np.random.SeedSequence)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng: expected numpy.random.Generator, SeedSequence, int seed or None, got {type(rng).__name__}")


def _chunk(name, n, snr_db, rng, cfg, random_gain):
    L = cfg.frame_len
    lead = channel.lead_samples(cfg)
    x = _transmit(name, n, L + lead, rng, cfg)
    y, chan_gain = channel.multipath(x, L, rng, cfg)
    channel.oscillator(y, rng, cfg)
    channel.iq_imbalance(y, rng, cfg)
    p_sig = np.mean(y.real**2 + y.imag**2, axis=1, dtype=np.float64)
    if name in mod.ANALOG_CLASSES:
        p_sig = np.maximum(p_sig, chan_gain * 10 ** (cfg.analog_silence_floor_db / 10))
    p_sig = np.maximum(p_sig, 1e-30)
    noise_power = p_sig * 10 ** (-snr_db / 10)
    noise = channel.awgn(n, L, noise_power, rng)
    if cfg.coloured_noise_prob > 0:  # (no draw at 0: datasets built before the option stay as they were)
        for i in np.flatnonzero(rng.uniform(size=n) < cfg.coloured_noise_prob):
            shaped = receiver_noise.coloured_noise(rng, L, cfg.coloured_noise_cutoff, centred=True)
            noise[i] = shaped * np.float32(np.sqrt(noise_power[i]))
    noisy = y + noise
    if random_gain:
        g = (10 ** (rng.uniform(*cfg.gain_db_range, size=n) / 20)).astype(np.float32)[:, None]
        noisy *= g
        y *= g
    return noisy, y


def generate_frames(class_name, n_frames, snr_db, rng=None, config=None, return_clean=False, random_gain=True):
    """Synthesise ``n_frames`` frames of one class through a random channel.

    class_name  one of config.classes (or any name in TRAINING_CLASSES), or an open-set
                modulation (open_set.OPEN_SET_MODULATIONS: for calibration and tests only);
                ``noise`` gives receiver-noise frames (snr_db is ignored, the clean frames are zeros)
    snr_db      scalar or (n_frames,) array, per-frame SNR in dB (see module docstring)
    rng         numpy Generator (or int seed / SeedSequence / None); fully determines output
    return_clean  also return the noise-free frames (same channel and gain, no AWGN)
    random_gain apply the per-frame receiver gain from config.gain_db_range
    Returns complex64 (n_frames, frame_len), or (noisy, clean) with return_clean.
    """
    cfg = DEFAULT_CONFIG if config is None else config
    if not isinstance(cfg, GeneratorConfig):
        raise TypeError(f"config: expected GeneratorConfig or None, got {type(cfg).__name__}")
    if class_name not in TRAINING_CLASSES + open_set.OPEN_SET_MODULATIONS:
        raise ValueError(f"class_name: expected one of {list(TRAINING_CLASSES + open_set.OPEN_SET_MODULATIONS)}, "
                         f"got {class_name!r}")
    if not isinstance(n_frames, (int, np.integer)) or isinstance(n_frames, bool) or n_frames < 0:
        raise ValueError(f"n_frames: expected an integer >= 0, got {n_frames!r}")
    snr = np.asarray(snr_db, dtype=np.float64)
    if snr.ndim == 0:
        snr = np.full(n_frames, float(snr))
    if snr.shape != (n_frames,):
        raise ValueError(f"snr_db: expected a scalar or shape ({n_frames},), got shape {snr.shape}")
    if not np.all(np.isfinite(snr)):
        raise ValueError("snr_db: expected finite values, got NaN or inf")
    rng = _as_rng(rng)
    L = cfg.frame_len
    if class_name == NOISE_LABEL:
        noise = receiver_noise.noise_frames(int(n_frames), rng, cfg)
        return (noise, np.zeros_like(noise)) if return_clean else noise
    noisy = np.empty((n_frames, L), dtype=np.complex64)
    clean = np.empty((n_frames, L), dtype=np.complex64) if return_clean else None
    for lo in range(0, n_frames, CHUNK):
        hi = min(n_frames, lo + CHUNK)
        a, b = _chunk(class_name, hi - lo, snr[lo:hi], rng, cfg, random_gain)
        noisy[lo:hi] = a
        if return_clean:
            clean[lo:hi] = b
    return (noisy, clean) if return_clean else noisy


def synthesize(class_name, n_frames, snr_db, rng=None, config=None):
    """Streaming helper: (n_frames, frame_len) complex64 frames of one class at one SNR."""
    return generate_frames(class_name, n_frames, snr_db, rng, config)


def synthesize_stream(class_name, n_samples, snr_db, rng=None, config=None):
    """A complex64 sample stream of one class: whole frames back to back, cut to n_samples.

    The receiver gain is left at 1 so the level does not jump at frame boundaries.
    """
    cfg = DEFAULT_CONFIG if config is None else config
    if not isinstance(n_samples, (int, np.integer)) or n_samples < 0:
        raise ValueError(f"n_samples: expected an integer >= 0, got {n_samples!r}")
    n_frames = -(-int(n_samples) // cfg.frame_len)
    frames = generate_frames(class_name, n_frames, snr_db, rng, cfg, random_gain=False)
    return frames.ravel()[:n_samples]


def to_iq(frames):
    """complex (N, L) -> float32 (N, 2, L) with row 0 = I, row 1 = Q."""
    frames = np.asarray(frames)
    out = np.empty((frames.shape[0], 2, frames.shape[1]), dtype=np.float32)
    out[:, 0] = frames.real
    out[:, 1] = frames.imag
    return out


def generate_labeled(labels, snr_db, rng=None, config=None):
    """Frames for given class indices and SNRs, in that order.

    labels (N,) int indices into config.classes; snr_db (N,). Classes are synthesised in
    class-index order from ``rng``, so the output depends only on the inputs and the seed.
    Returns float32 x (N, 2, L).
    """
    cfg = DEFAULT_CONFIG if config is None else config
    labels = np.asarray(labels)
    snr = np.asarray(snr_db, dtype=np.float64)
    if labels.ndim != 1 or snr.shape != labels.shape:
        raise ValueError(f"labels/snr_db: expected equal 1-D shapes, got {labels.shape} and {snr.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= len(cfg.classes)):
        raise ValueError(f"labels: expected indices in [0, {len(cfg.classes) - 1}], got range [{labels.min()}, {labels.max()}]")
    rng = _as_rng(rng)
    x = np.empty((labels.size, 2, cfg.frame_len), dtype=np.float32)
    for c, name in enumerate(cfg.classes):
        idx = np.flatnonzero(labels == c)
        if idx.size:
            x[idx] = to_iq(generate_frames(name, int(idx.size), snr[idx], rng, cfg))
    return x

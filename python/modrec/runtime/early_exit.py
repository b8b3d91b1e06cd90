"""Early-exit inference: stage after stage, each batched, only unfinished frames going on.

An early-exit model is an entry file (a contract model, the whole network) whose metadata names
its stage files (``exit_stages``), the exit rule (``exit_policy``) and one threshold per early
exit (``exit_thresholds``): training/exits/export.py writes them, contract.decode_exit_metadata
reads them. Stage 0 runs on every frame; frames whose exit is confident enough stop there, the
rest go on as one smaller batch, and so on. A frame that goes all the way costs the plain network
plus the early heads and one gather per stage, so while few frames leave (low SNR) the stream
runs through the entry file instead, the plain network, and every few windows a probe looks
whether frames would leave again. load_model (load.py) picks this or the plain OnnxModel.
numpy + onnxruntime only.
"""

import os

import numpy as np

from .. import contract
from .onnx_model import (PROBE_BATCHES, OnnxModel, Predictions, check_probabilities, open_session, ort_error,
                         probe_frames, session_options)

POLICIES = contract.EXIT_POLICIES  # the exit rules' names: the contract's tuple


def gate_features(probs):
    """What the learned exit rule sees of an exit's probabilities: (N, C) -> (N, 3 + 4C): the two
    largest, the normalised entropy, the log-probabilities, and the one-hot answer alone and
    scaled by its probability and by the entropy (how sure an exit may be depends on its answer)."""
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0)
    top = -np.sort(-p, axis=1)[:, :2]
    entropy = uncertainty(p, contract.POLICY_ENTROPY)[:, None]
    answer = np.eye(p.shape[1])[p.argmax(axis=1)]
    return np.concatenate([top, entropy, np.log(np.maximum(p, 1e-6)), answer, answer * top[:, :1], answer * entropy], axis=1)


def uncertainty(probs, policy, gate=None):
    """The exit rule (smaller = more certain): normalised entropy, 1 - max probability, or for
    ``gate`` 1 - the learned probability that leaving costs nothing (``gate``: that exit's weights,
    metadata ``exit_gates``). The one implementation: threshold calibration (training/exits) uses
    it too, so a frame at the threshold is decided alike in both."""
    probs = np.asarray(probs, dtype=np.float64)
    if policy == contract.POLICY_ENTROPY:
        p = np.clip(probs, 1e-12, 1.0)
        return -(p * np.log(p)).sum(axis=1) / np.log(probs.shape[1])
    if policy == contract.POLICY_MAXPROB:
        return 1.0 - probs.max(axis=1)
    if policy == contract.POLICY_GATE:
        if gate is None:
            raise ValueError(f"exit policy '{contract.POLICY_GATE}' needs the exit's gate weights "
                             f"(metadata {contract.EXIT_GATES})")
        hidden = np.maximum(gate_features(probs) @ np.asarray(gate["w1"]).T + np.asarray(gate["b1"]), 0.0)
        return np.exp(-np.logaddexp(0.0, hidden @ np.asarray(gate["w2"]) + float(gate["b2"])))  # 1 - sigmoid
    raise ValueError(f"unknown exit policy {policy!r}; known: {', '.join(POLICIES)}")


def exit_decisions(exit_probs, thresholds, policy, gates=None):
    """(probs, exit index) per frame from every exit's probabilities [(N, C), ...] (final last):
    each frame takes the first early exit whose uncertainty is at most its threshold."""
    n = len(exit_probs[0])
    chosen = np.array(exit_probs[-1], copy=True)
    taken = np.full(n, len(exit_probs) - 1, dtype=np.int64)
    pending = np.ones(n, dtype=bool)
    for k, (p, t) in enumerate(zip(exit_probs[:-1], thresholds)):
        leave = pending & (uncertainty(p, policy, gates[k] if gates else None) <= t)
        chosen[leave] = p[leave]
        taken[leave] = k
        pending &= ~leave
    return chosen, taken


def check_gates(gates, n_classes, source):
    """The gates contract.decode_exit_metadata decoded (one {w1 (H, 3 + 4C), b1 (H), w2 (H), b2}
    per early exit), their shapes checked, as arrays."""
    features = 3 + 4 * n_classes
    key = contract.EXIT_GATES
    checked = []
    for k, gate in enumerate(gates):
        try:
            arrays = {key: np.asarray(gate[key], float) for key in ("w1", "b1", "w2")}
            arrays["b2"] = float(gate["b2"])
        except (KeyError, TypeError, ValueError) as err:
            raise contract.ContractError(f"{source}: {key}[{k}] needs numeric w1, b1, w2, b2 ({err})") from None
        w1, b1, w2 = arrays["w1"], arrays["b1"], arrays["w2"]
        if w1.ndim != 2 or w1.shape[1] != features or b1.shape != (w1.shape[0],) or w2.shape != (w1.shape[0],):
            raise contract.ContractError(f"{source}: {key}[{k}] shapes w1 {w1.shape}, b1 {b1.shape}, w2 {w2.shape}; "
                                         f"expected (H, {features}), (H,), (H,) for {n_classes} classes")
        checked.append(arrays)
    return checked


# What splitting the network into sessions costs a frame that goes all the way, as a share of the
# whole network (measured for cnn3 and mobilenet1d in paired rounds: 0-7 %).
CASCADE_OVERHEAD = 0.05
# The runtime chooses how to run the stream once per window of this many frames, counted in
# stream order, so a frame's answer depends on the stream before it and never on how the stream
# was cut into calls.
WINDOW_FRAMES = 256
# While the stream runs through the plain network, every this-many-th window is a probe.
PROBE_EVERY = 8

_CASCADE, _PROBE, _PLAIN = "cascade", "probe", "plain"


class EarlyExitModel(OnnxModel):
    """``predict`` as OnnxModel; ``predict_with_exits`` also returns the exit each frame took.

    Adaptive (the default): the stream is cut into windows of WINDOW_FRAMES frames in stream order
    and each window runs one way. While the share of frames leaving early (a moving average over
    recent windows) is at least ``cascade_from``, the share at which the frames that skip the later
    stages repay the heads and the cascade's overhead, windows run the cascade. Below it they run
    the entry file, the plain network, and every frame takes the final exit: no frame pays for
    heads whose answers are not used. Every PROBE_EVERY-th such window is a probe: it computes
    every exit (the all-exits file, or the cascade without one), answers as the cascade, and
    measures the share again, so the cascade comes back within PROBE_EVERY windows once frames
    would leave. With ``adaptive=False`` every frame runs the cascade.
    """

    def __init__(self, path, threads=1, thresholds=None, adaptive=True):
        super().__init__(path, threads=threads)
        self._open_stages(thresholds, adaptive)

    @classmethod
    def from_entry(cls, entry, thresholds=None, adaptive=True):
        """The early-exit model around an entry file already loaded (and probed) as an OnnxModel:
        its session is taken over, not opened again (load_model). ``entry`` is not to be used after."""
        if type(entry) is not OnnxModel:
            raise TypeError(f"from_entry takes a loaded OnnxModel, got {type(entry).__name__}")
        model = cls.__new__(cls)
        vars(model).update(vars(entry))
        model._open_stages(thresholds, adaptive)
        return model

    def _open_stages(self, thresholds, adaptive):
        """Decode the early-exit metadata, open each stage file (and the all-exits file) once,
        probe them, and set the stream up to start with a probe window."""
        md, src = self.metadata, self.path
        if self.open_set.score not in (None, contract.SCORE_MAXPROB):
            raise contract.ContractError(f"{src}: an early-exit model's '{contract.UNKNOWN_SCORE}' must be "
                                         f"'{contract.SCORE_MAXPROB}' (its stages give probabilities only), got "
                                         f"{self.open_set.score!r}")
        exits = contract.decode_exit_metadata(md, source=src)
        names, flops = list(exits.stages), None if exits.flops is None else list(exits.flops)
        self.policy = exits.policy
        self.placements = None if exits.placements is None else list(exits.placements)
        self.gates = None if exits.gates is None else check_gates(list(exits.gates), len(self.classes), src)
        self.exit_flops = flops
        self.thresholds = [float(t) for t in (exits.thresholds if thresholds is None else thresholds)]
        if len(self.thresholds) != len(names) - 1:
            raise ValueError(f"{src}: {len(names) - 1} thresholds needed, got {self.thresholds}")
        opts = session_options(self.threads)
        self.stage_paths = [os.path.join(os.path.dirname(src), n) for n in names]
        self._stages = []
        for k, stage_path in enumerate(self.stage_paths):
            if not os.path.isfile(stage_path):
                raise FileNotFoundError(f"{src}: stage file {stage_path} ({contract.EXIT_STAGES}[{k}]) does not exist")
            sess = open_session(stage_path, opts)
            outs = [o.name for o in sess.get_outputs()]
            want = 1 if k == len(names) - 1 else 2
            if len(outs) != want:
                raise contract.ContractError(f"{stage_path}: stage {k} should have {want} output(s), has {outs}")
            self._stages.append((sess, sess.get_inputs()[0].name, outs))
        self._all = None
        if exits.all_exits:
            all_path = os.path.join(os.path.dirname(src), exits.all_exits)
            if not os.path.isfile(all_path):
                raise FileNotFoundError(f"{src}: all-exits file {all_path} ({contract.EXIT_ALL}) does not exist")
            sess = open_session(all_path, opts)
            if len(sess.get_outputs()) != len(names):
                raise contract.ContractError(f"{all_path}: the all-exits file should have {len(names)} outputs "
                                             f"(one per exit), has {len(sess.get_outputs())}")
            self._all = (sess, sess.get_inputs()[0].name, [o.name for o in sess.get_outputs()])
        self._probe_stages()
        self.adaptive = adaptive
        self.cascade_from = _cascade_break_even(flops, md.get(contract.FLOPS))
        self._stage_flops_to = np.cumsum(flops or [0] * len(names)).astype(np.int64)  # leaving at exit k costs stages 0..k
        self._plain_flops = int(md.get(contract.FLOPS) or self._stage_flops_to[-1])
        self.leave_share = 0.0  # moving average of the share of frames leaving early, per window
        self.flops_spent = self.frames_run = 0  # for cost figures: FLOPs run (each frame, the stages it ran)
        self._mode = _PROBE if adaptive else _CASCADE  # the first window measures the share
        self._window_filled = self._window_left = self._since_probe = 0

    def _probe_stages(self):
        """Every stage (and the all-exits file) once per probe batch size, each stage on the
        previous one's features: a stage file of another model, or one that only runs batch 1,
        is refused at load, not once high-SNR frames start leaving early."""
        for n in PROBE_BATCHES:
            x = probe_frames(n, self.frame_len)
            for k, ((sess, input_name, outputs), path) in enumerate(zip(self._stages, self.stage_paths)):
                try:
                    result = sess.run(outputs, {input_name: x})
                except Exception as err:
                    fed = "the frames" if k == 0 else f"stage {k - 1}'s features"
                    raise contract.ContractError(
                        f"{path}: stage {k} of {self.path} fails on {fed} for a probe batch of {n}: {ort_error(err)} "
                        f"(a stage file of another model, or one that runs batch 1 only)") from None
                check_probabilities(result[0], n, self.n_classes, path, f"stage {k}'s exit")
                x = result[-1]
            if self._all is not None:
                sess, input_name, outputs = self._all
                try:
                    every = sess.run(outputs, {input_name: probe_frames(n, self.frame_len)})
                except Exception as err:
                    raise contract.ContractError(f"{self.path}: its all-exits file fails on a probe batch of {n}: "
                                                 f"{ort_error(err)}") from None
                for k, probs in enumerate(every):
                    check_probabilities(probs, n, self.n_classes, self.path, f"all-exits output {k}")

    @property
    def n_exits(self):
        return len(self._stages)

    def predict(self, frames):
        return self.predict_with_exits(frames)[0]

    @property
    def has_snr(self):
        return False  # the stages give probabilities only

    def predict_details(self, frames):
        """As OnnxModel's, from the cascade: the stages give probabilities only, so no SNR
        estimate, and the open-set score (maxprob) of the exit each frame took."""
        probs, exits = self.predict_with_exits(frames)
        return Predictions(probs, exits, unknown_score=self._unknown_score(probs, None))

    def exit_probabilities(self, frames):
        """Every exit's class probabilities for every frame (no frame leaves): [(N, C)] per exit.
        For analysis (which exit would have been right), not for streaming."""
        x = self._check_frames(frames)
        if self._all is not None:
            sess, input_name, outputs = self._all
            return list(sess.run(outputs, {input_name: x}))
        out = []
        for sess, input_name, outputs in self._stages:
            result = sess.run(outputs, {input_name: x})
            out.append(result[0])
            x = result[-1]
        return out

    def _check_frames(self, frames):
        frames = np.ascontiguousarray(frames, dtype=np.float32)
        if frames.ndim != 3 or frames.shape[1] != contract.IQ_ROWS or frames.shape[2] != self.frame_len:
            raise ValueError(f"frames should have shape (N, {contract.IQ_ROWS}, {self.frame_len}), got {frames.shape}")
        return frames

    def predict_with_exits(self, frames):
        """float32 (N, 2, frame_len) -> (probs (N, C) float32, exit index (N,) int)."""
        frames = self._check_frames(frames)
        n = frames.shape[0]
        if n <= self._frames_left_in_mode():  # one run, no copies
            return self._run_part(frames)
        probs = np.zeros((n, self.n_classes), dtype=np.float32)
        taken = np.zeros(n, dtype=np.int64)
        start = 0
        while start < n:
            stop = min(n, start + self._frames_left_in_mode())
            probs[start:stop], taken[start:stop] = self._run_part(frames[start:stop])
            start = stop
        return probs, taken

    def _frames_left_in_mode(self):
        """Frames the stream runs the current way for, whatever they hold."""
        if not self.adaptive:
            return np.iinfo(np.int64).max
        left = WINDOW_FRAMES - self._window_filled
        if self._mode == _PLAIN:  # the windows up to the next probe are plain too: one run, not one per window
            left += WINDOW_FRAMES * (PROBE_EVERY - 2 - self._since_probe)
        return left

    def _run_part(self, frames):
        n = frames.shape[0]
        if n == 0:
            return np.zeros((0, self.n_classes), dtype=np.float32), np.zeros(0, dtype=np.int64)
        if self._mode == _PLAIN:
            probs, taken = OnnxModel.predict(self, frames), np.full(n, self.n_exits - 1, dtype=np.int64)
            self.flops_spent += n * self._plain_flops
        elif self._mode == _PROBE and self._all is not None:
            sess, input_name, outputs = self._all
            probs, taken = exit_decisions(sess.run(outputs, {input_name: frames}), self.thresholds, self.policy, self.gates)
            self.flops_spent += n * self._stage_flops_to[-1]
        else:
            probs, taken = self._cascade(frames)
            self.flops_spent += int(self._stage_flops_to[taken].sum())
        self.frames_run += n
        if self.adaptive:
            self._window_left += int(np.count_nonzero(taken < self.n_exits - 1))  # a part spanning windows is plain: 0
            while n:
                step = min(n, WINDOW_FRAMES - self._window_filled)
                self._window_filled += step
                n -= step
                if self._window_filled == WINDOW_FRAMES:
                    self._next_window()
        return probs, taken

    def _next_window(self):
        share = self._window_left / WINDOW_FRAMES
        if self._mode == _CASCADE:
            self.leave_share = 0.8 * self.leave_share + 0.2 * share
        elif self._mode == _PROBE:  # the only look at the share since the last probe
            self.leave_share = share
        self._window_filled = self._window_left = 0
        if self.leave_share >= self.cascade_from:
            self._mode = _CASCADE
        else:
            self._since_probe = self._since_probe + 1 if self._mode == _PLAIN else 0
            self._mode = _PROBE if self._since_probe >= PROBE_EVERY - 1 else _PLAIN

    def _cascade(self, frames):
        n = frames.shape[0]
        probs = np.zeros((n, self.n_classes), dtype=np.float32)
        taken = np.full(n, self.n_exits - 1, dtype=np.int64)
        rows, x = np.arange(n), frames
        for k, (sess, input_name, outputs) in enumerate(self._stages):
            if len(rows) == 0:
                break
            result = sess.run(outputs, {input_name: x})
            p = result[0]
            if k == self.n_exits - 1:
                probs[rows] = p
                break
            leave = uncertainty(p, self.policy, self.gates[k] if self.gates else None) <= self.thresholds[k]
            if not leave.any():  # nobody leaves (typical at low SNR): hand the features on uncopied
                x = result[1]
                continue
            probs[rows[leave]] = p[leave]
            taken[rows[leave]] = k
            stay = ~leave
            rows, x = rows[stay], np.ascontiguousarray(result[1][stay])
        return probs, taken


def _cascade_break_even(exit_flops, plain_flops):
    """The share of frames leaving at exit 0 from which the cascade costs no more than the plain
    network: what they skip repays the early heads (every frame runs them) and the split."""
    if not exit_flops:
        return 0.0
    total, plain = float(sum(exit_flops)), float(plain_flops or sum(exit_flops))
    skipped = total - float(exit_flops[0])  # what a frame leaving at exit 0 saves
    heads = max(total - plain, 0.0)
    return (heads + CASCADE_OVERHEAD * plain) / skipped if skipped > 0 else float("inf")

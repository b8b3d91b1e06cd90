"""Stream framing for the classifier: which absolute offsets start a frame, and a carry-over
buffer that holds samples until every frame starting in them has been classified.

Pure numpy so the bookkeeping is testable without a flowgraph: the block only feeds it the
samples of each work() call and asks how far output may go.

Frames start at absolute stream offsets 0, hop, 2*hop, ... and span ``frame_len`` samples, so
``hop < frame_len`` overlaps frames and ``hop > frame_len`` leaves gaps that are never classified.
"""

import numpy as np

from .resample import StreamResampler


def _check_positive(name, value):
    if int(value) != value or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def frame_starts(n_items, frame_len, hop):
    """Starts of every complete frame in a stream of ``n_items`` samples.

    There are ``floor((n_items - frame_len) / hop) + 1`` of them when ``n_items >= frame_len``.
    """
    frame_len = _check_positive("frame_len", frame_len)
    hop = _check_positive("hop", hop)
    if n_items < frame_len:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, n_items - frame_len + 1, hop, dtype=np.int64)


def complex_to_iq(frames):
    """(N, L) complex -> (N, 2, L) float32, row 0 = I, row 1 = Q (the contract's layout)."""
    frames = np.asarray(frames)
    if frames.ndim != 2:
        raise ValueError(f"expected (N, frame_len) complex frames, got shape {frames.shape}")
    iq = np.empty((frames.shape[0], 2, frames.shape[1]), dtype=np.float32)
    iq[:, 0, :] = frames.real
    iq[:, 1, :] = frames.imag
    return iq


class StreamFramer:
    """Carry-over buffer plus frame clock for a pass-through classifier.

    Holds the samples from ``start`` (the next sample to release downstream) to ``end`` (one past
    the newest sample pushed). A sample may only be released once every frame starting at or
    before it has been classified, because its tag has to exist before downstream reads it;
    ``releasable()`` says how far that is.
    """

    def __init__(self, frame_len, hop, dtype=np.complex64):
        self.frame_len = _check_positive("frame_len", frame_len)
        self.hop = _check_positive("hop", hop)
        self._dtype = np.dtype(dtype)
        self.reset()

    def reset(self, offset=0):
        self._buf = np.zeros(max(4 * self.frame_len, 4096), dtype=self._dtype)
        self._start = int(offset)
        self._len = 0
        # Start of the next frame not yet handed out by take_complete().
        self._next_frame = -(-self._start // self.hop) * self.hop

    @property
    def start(self):
        return self._start

    @property
    def end(self):
        return self._start + self._len

    def __len__(self):
        return self._len

    @property
    def next_frame(self):
        return self._next_frame

    def push(self, samples):
        """Append stream samples; returns them as framed (the model-rate samples, here the same)."""
        samples = np.asarray(samples, dtype=self._dtype)
        n = samples.shape[0]
        if self._len + n > self._buf.shape[0]:
            grown = np.zeros(max(2 * self._buf.shape[0], self._len + n), dtype=self._dtype)
            grown[: self._len] = self._buf[: self._len]
            self._buf = grown
        self._buf[self._len : self._len + n] = samples
        self._len += n
        return samples

    def take_complete(self):
        """Frames that became complete since the last call: (starts int64 (K,), frames (K, L))."""
        last = self.end - self.frame_len
        if self._next_frame > last:
            return np.zeros(0, dtype=np.int64), np.zeros((0, self.frame_len), dtype=self._dtype)
        starts = np.arange(self._next_frame, last + 1, self.hop, dtype=np.int64)
        rel = starts - self._start
        idx = rel[:, None] + np.arange(self.frame_len)[None, :]
        frames = self._buf[idx]
        self._next_frame = int(starts[-1]) + self.hop
        return starts, frames

    @property
    def frame_span(self):
        """Stream samples one frame covers (= frame_len: frames are cut from the stream itself)."""
        return self.frame_len

    @property
    def hold_len(self):
        """Stream samples that must be buffered for one frame to complete."""
        return self.frame_len

    def finish(self):
        """Frames completed by the end of the stream: none (a frame needs all its samples)."""
        return np.zeros(0, dtype=np.int64), np.zeros((0, self.frame_len), dtype=self._dtype)

    def releasable(self, end_of_stream=False):
        """Absolute offset up to which samples may be released downstream.

        Everything before the first frame that is still incomplete; at end of stream that frame
        can never complete, so everything buffered may go.
        """
        if end_of_stream:
            return self.end
        return min(self._next_frame, self.end)

    def pop(self, n):
        """Release the oldest ``n`` buffered samples (a copy) and forget them."""
        if n < 0 or n > self._len:
            raise ValueError(f"cannot pop {n} samples, {self._len} buffered")
        out = self._buf[:n].copy()
        # Shift rather than ring-buffer: the buffer stays a few frames long, so the copy is cheap
        # and frames stay contiguous for fancy indexing.
        self._buf[: self._len - n] = self._buf[n : self._len]
        self._len -= n
        self._start += n
        if self._next_frame < self._start:
            # Only after an end-of-stream flush: frames starting in released samples are lost.
            self._next_frame = -(-self._start // self.hop) * self.hop
        return out


class ResampledFramer:
    """A StreamFramer on a resampled copy of the stream, holding the original samples for release.

    A model expects its own samples per symbol; a stream at another rate is resampled by
    ``up / down`` (StreamResampler, equal to ``scipy.signal.resample_poly``) and framed there:
    frames of ``frame_len`` resampled samples start at resampled offsets 0, hop, 2*hop, ... The
    original samples pass through untouched, so everything the block sees is in input samples:
    ``take_complete()`` returns each frame's start as the input sample at the same instant,
    ``floor(start * down / up)`` (resample_poly removes its filter delay, so the instants agree),
    and ``releasable()`` lets go of the input before the next incomplete frame's start.

    Same interface as StreamFramer: push / take_complete / finish / releasable / pop / reset,
    start / end / len in input samples; ``frame_span`` is the input samples a frame covers.
    """

    def __init__(self, frame_len, hop, up, down, dtype=np.complex64):
        self._resampler = StreamResampler(up, down)
        self.up, self.down = self._resampler.up, self._resampler.down
        self._frames = StreamFramer(frame_len, hop, dtype)
        self.frame_len, self.hop = self._frames.frame_len, self._frames.hop
        self._held = StreamFramer(1, 1, dtype)  # only its sample buffer is used
        self._dtype = np.dtype(dtype)

    def reset(self, offset=0):
        if offset:
            raise ValueError("a resampled stream restarts at offset 0 (its resampler starts afresh)")
        self._resampler.reset()
        self._frames.reset()
        self._held.reset()

    @property
    def frame_span(self):
        """Input samples one frame covers, ceil(frame_len * down / up): rounded up, so that back-to-back
        frames, whose starts are rounded down, leave no gap between them at the input rate."""
        return -(-self.frame_len * self.down // self.up)

    @property
    def hold_len(self):
        """Input samples to buffer for one frame to complete: its span plus the resampler's delay."""
        return self.frame_span + self._resampler.n_held_max

    @property
    def start(self):
        return self._held.start

    @property
    def end(self):
        return self._held.end

    def __len__(self):
        return len(self._held)

    def _to_input(self, resampled_offsets):
        return (np.asarray(resampled_offsets, dtype=np.int64) * self.down) // self.up

    def push(self, samples):
        """Append input samples; returns the resampled samples they gave (the model-rate stream)."""
        self._held.push(samples)
        return self._frames.push(self._resampler.process(samples))

    def _take(self):
        starts, frames = self._frames.take_complete()
        # resampled samples before the next frame are no longer needed
        self._frames.pop(self._frames.releasable() - self._frames.start)
        return self._to_input(starts), frames

    def take_complete(self):
        """Frames completed since the last call: (input-sample starts int64 (K,), frames (K, frame_len))."""
        return self._take()

    def finish(self):
        """At end of stream: the resampler's last outputs (zeros after the input, as resample_poly
        pads), and the frames they complete."""
        self._frames.push(self._resampler.flush())
        return self._take()

    def releasable(self, end_of_stream=False):
        if end_of_stream:
            return self.end
        return int(min(self._to_input(self._frames.next_frame), self.end))

    def pop(self, n):
        return self._held.pop(n)

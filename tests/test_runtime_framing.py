import numpy as np
import pytest

from gnuradio.modrec.runtime import StreamFramer, complex_to_iq, frame_starts


@pytest.mark.parametrize("n,frame_len,hop", [(1000, 32, 32), (1000, 32, 7), (1000, 32, 45), (31, 32, 8), (32, 32, 1)])
def test_frame_starts_count_and_positions(n, frame_len, hop):
    starts = frame_starts(n, frame_len, hop)
    expected = (n - frame_len) // hop + 1 if n >= frame_len else 0
    assert len(starts) == expected
    assert np.array_equal(starts, np.arange(expected) * hop)
    assert np.all(starts + frame_len <= n)


@pytest.mark.parametrize("bad", [0, -1, 2.5])
def test_bad_hop_and_frame_len_rejected(bad):
    with pytest.raises(ValueError, match="hop"):
        StreamFramer(16, bad)
    with pytest.raises(ValueError, match="frame_len"):
        frame_starts(100, bad, 4)


def test_complex_to_iq_layout():
    frames = (np.arange(6) + 1j * (10 + np.arange(6))).reshape(2, 3).astype(np.complex64)
    iq = complex_to_iq(frames)
    assert iq.dtype == np.float32 and iq.shape == (2, 2, 3)
    assert np.array_equal(iq[:, 0], frames.real) and np.array_equal(iq[:, 1], frames.imag)


def _stream(framer, x, rng, max_chunk, max_out):
    """Drive the framer the way the block does; return released data and classified frames."""
    released, starts_all, frames_all = [], [], []
    pos = 0
    while pos < len(x):
        chunk = int(rng.integers(1, max_chunk + 1))
        framer.push(x[pos : pos + chunk])
        pos += chunk
        starts, frames = framer.take_complete()
        starts_all.append(starts)
        frames_all.append(frames)
        limit = framer.releasable()
        # A sample may go only when no incomplete frame starts at or before it.
        assert limit <= framer.next_frame
        n = min(int(rng.integers(0, max_out + 1)), limit - framer.start)
        released.append(framer.pop(n))
    starts, frames = framer.take_complete()
    starts_all.append(starts)
    frames_all.append(frames)
    released.append(framer.pop(framer.releasable(end_of_stream=True) - framer.start))
    return np.concatenate(released), np.concatenate(starts_all), np.concatenate(frames_all)


@pytest.mark.parametrize("hop", [5, 16, 40])
@pytest.mark.parametrize("max_chunk,max_out", [(1, 3), (7, 50), (200, 1000)])
def test_streaming_releases_everything_and_finds_every_frame(hop, max_chunk, max_out):
    rng = np.random.default_rng(hop * 1000 + max_chunk)
    x = (rng.standard_normal(777) + 1j * rng.standard_normal(777)).astype(np.complex64)
    framer = StreamFramer(16, hop)
    out, starts, frames = _stream(framer, x, rng, max_chunk, max_out)
    assert np.array_equal(out, x)
    assert np.array_equal(starts, frame_starts(len(x), 16, hop))
    for s, f in zip(starts, frames):
        assert np.array_equal(f, x[s : s + 16])
    assert len(framer) == 0


def test_hold_back_stops_at_incomplete_frame():
    framer = StreamFramer(10, 4)
    framer.push(np.arange(11, dtype=np.complex64))
    starts, _ = framer.take_complete()
    assert list(starts) == [0]
    assert framer.releasable() == 4  # frame at 4 needs samples up to 13
    assert framer.releasable(end_of_stream=True) == 11
    framer.pop(4)
    framer.push(np.arange(11, 14, dtype=np.complex64))
    assert list(framer.take_complete()[0]) == [4]
    assert framer.releasable() == 8


def test_gaps_release_immediately():
    framer = StreamFramer(4, 10)
    framer.push(np.arange(9, dtype=np.complex64))
    assert list(framer.take_complete()[0]) == [0]
    assert framer.releasable() == 9  # next frame starts at 10, beyond the data


def test_pop_beyond_buffer_rejected():
    framer = StreamFramer(4, 4)
    framer.push(np.zeros(3, dtype=np.complex64))
    with pytest.raises(ValueError):
        framer.pop(4)


# ----------------------------------------------------------------------------- resampled framing


@pytest.mark.parametrize("up, down, hop", [(1, 2, 16), (2, 1, 16), (3, 4, 8), (1, 4, 32), (4, 1, 40)])
def test_resampled_framer_frames_resample_poly_and_maps_starts_to_input(up, down, hop):
    from scipy.signal import resample_poly

    from gnuradio.modrec.runtime.framing import ResampledFramer

    rng = np.random.default_rng(up * 10 + down)
    x = (rng.standard_normal(3000) + 1j * rng.standard_normal(3000)).astype(np.complex64)
    reference = resample_poly(x, up, down).astype(np.complex64)
    framer = ResampledFramer(32, hop, up, down)
    starts, frames, released = [], [], []
    cuts = np.sort(rng.choice(np.arange(1, len(x)), 40, replace=False))
    for piece in np.split(x, cuts):
        framer.push(piece)
        s, f = framer.take_complete()
        starts.append(s)
        frames.append(f)
        # every sample before a classified frame's start, and only those, may be released
        limit = framer.releasable()
        assert all(int(v) <= limit for v in s) and limit <= framer.end
        released.append(framer.pop(limit - framer.start))
    s, f = framer.finish()
    starts.append(s)
    frames.append(f)
    released.append(framer.pop(framer.releasable(end_of_stream=True) - framer.start))
    starts, frames = np.concatenate(starts), np.concatenate(frames)
    resampled_starts = frame_starts(len(reference), 32, hop)
    assert len(starts) == len(resampled_starts)
    np.testing.assert_array_equal(starts, resampled_starts * down // up)
    for k, r in enumerate(resampled_starts):
        np.testing.assert_allclose(frames[k], reference[r : r + 32], atol=1e-5)
    np.testing.assert_array_equal(np.concatenate(released), x)  # the originals pass untouched
    assert framer.frame_span == -(-32 * down // up)

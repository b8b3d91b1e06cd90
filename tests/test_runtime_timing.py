"""runtime/timing.py: paired rounds cancel a drift of the machine's speed."""

import numpy as np

from gnuradio.modrec.runtime.timing import paired_times, speed_ratio


class Clock:
    """A fake machine that gets slower over time, and models that cost a fixed amount of work."""

    def __init__(self):
        self.now, self.slowness = 0.0, 1.0

    def work(self, units):
        self.now += units * self.slowness
        self.slowness *= 1.05  # 5 % slower after every call


def test_paired_rounds_cancel_a_drift(monkeypatch):
    clock = Clock()
    monkeypatch.setattr("gnuradio.modrec.runtime.timing.time.perf_counter", lambda: clock.now)
    frames = np.zeros((512, 2, 8), np.float32)
    calls = []
    predicts = {"plain": lambda x: (calls.append("plain"), clock.work(1.0)),
                "cascade": lambda x: (calls.append("cascade"), clock.work(1.0))}  # the same cost
    times = paired_times(predicts, frames, batch=256, rounds=3)
    assert calls[:2] == ["plain", "cascade"]  # warm-up, one batch each
    assert calls[2:10] == ["plain"] * 2 + ["cascade"] * 4 + ["plain"] * 2  # A B B A, 2 batches per pass
    assert all(len(v) == 3 for v in times.values())
    # timed one after the other the drift alone would make the second model look 10 % slower;
    # paired rounds put the two within 1 %
    assert abs(speed_ratio(times, "plain", "cascade") - 1) < 0.01
    assert speed_ratio({"a": [2.0, 2.0, 9.0], "b": [1.0, 1.0, 1.0]}, "a", "b") == 2.0  # the median round

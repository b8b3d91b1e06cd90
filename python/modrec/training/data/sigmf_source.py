"""A labelled SigMF recording as a data source (see sources.py for the interface).

Each annotation with ``core:label`` is a labelled segment; it is cut into whole frames of
``frame_len`` samples (back to back, from the segment's first sample; a tail shorter than a
frame is left out). The recording is read through the runtime's reader (runtime/recording.py),
the same one ``modrec classify`` and the blocks' users rely on. SigMF has no SNR field, so every
frame's SNR is unknown (NaN): splits are stratified per class, and per-SNR tables have one row
for "SNR unknown".
"""

import numpy as np

from ...classes import DEFAULT_FRAME_LEN
from ...runtime.recording import RecordingError, frames_from_segments, open_recording
from .source import DataSource, DataSourceError


class SigMFSource(DataSource):
    """Frames of the labelled segments of one SigMF recording, in memory."""

    kind = "sigmf"

    def __init__(self, path, scheme, seed, limit=0, classes=None, frame_len=None, samples_per_symbol=None):
        super().__init__(path, scheme, seed, limit)
        self.frame_len = int(frame_len or DEFAULT_FRAME_LEN)
        self.samples_per_symbol = samples_per_symbol
        try:
            recording = open_recording(self.path, require_rate=False)  # frames need no rate
            if not recording.labelled:
                raise DataSourceError(f"{self.path}: no annotation carries core:label, so there is nothing to train or "
                                      f"score on; classify it instead (modrec classify {self.path})")
            x, labels, _starts = frames_from_segments(recording, self.frame_len, classes=classes)
        except RecordingError as err:
            raise DataSourceError(str(err)) from None
        names = [str(label) for label in labels]
        self._classes_given = classes is not None
        self.classes = tuple(classes) if classes is not None else tuple(sorted(set(names)))
        index = {name: i for i, name in enumerate(self.classes)}
        self._x = np.ascontiguousarray(x, np.float32)
        self._y = np.array([index[name] for name in names], np.int64)
        self._snr = np.full(self._y.size, np.nan, np.float32)
        self.sample_rate = recording.sample_rate

    def record(self):
        rec = super().record()
        rec["frame_len"] = self.frame_len
        if self._classes_given:
            rec["classes"] = list(self.classes)
        if self.samples_per_symbol is not None:
            rec["samples_per_symbol"] = self.samples_per_symbol
        return rec

    def _labels(self):
        return self._y, self._snr

    def _read(self, rows):
        return self._x[rows]

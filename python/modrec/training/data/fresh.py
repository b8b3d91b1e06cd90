"""Fresh training frames every epoch: the generator's frames for the train split's own labels.

A synthetic train split is 220k frames; a model trained 30 epochs sees each of them 30 times
(augmented). With ``data.fresh_frames`` each epoch after the first trains on frames generated
anew for the same (class, SNR) labels, in the same order, so that labels, SNRs and every
per-index table built on them (class weights, the detector's targets) stay valid: the model
sees 30 x 220k different frames for the price of generating them (about 70k frames/s per core,
data/generator.py), which is what data-bound models (the 3.4 M-parameter teachers) need
(issue 24).

Epoch e's frames depend on (the dataset's seed, e) and nothing else: a resumed run trains on the
frames the interrupted one would have, and the output is the same for any number of workers
(each shard of ``shard_frames`` frames has its own seed, as in data/dataset.py). With workers,
the next epoch's frames are generated in other processes while this epoch trains.
"""

import multiprocessing
import zlib

import numpy as np

from .generator import GeneratorConfig, generate_labeled

_FRESH_KEY = zlib.crc32(b"fresh-train-frames")  # separates these streams from the dataset's own
SHARD_FRAMES = 16384


def _shard_seed(seed, epoch, index):
    return np.random.SeedSequence(int(seed), spawn_key=(_FRESH_KEY, int(epoch), int(index)))


def _generate_shard(job):
    """Worker entry: float32 (n, 2, L) frames of one shard of one epoch."""
    config_dict, seed, epoch, index, y, snr = job
    config = GeneratorConfig.from_dict(config_dict)
    return generate_labeled(y, snr, np.random.default_rng(_shard_seed(seed, epoch, index)), config)


class FreshFrames:
    """Newly generated train frames for each epoch.

    generator_config: the GeneratorConfig (or its dict) the split was made with (a synthetic
    dataset's meta["config"]); labels int (N,) and snr_db float (N,): the train split's, in its
    order; seed: the dataset's seed; workers: processes generating ahead (0: generate each epoch
    in this process when it is asked for, nothing ahead).

    ``frames(epoch)`` returns float32 (N, 2, frame_len) for that epoch (epoch >= 1; epoch 0
    trains on the stored split) and starts generating epoch + 1's. ``close()`` stops the workers
    (also on garbage collection and as a context manager). Raises ValueError for mismatched
    labels and SNRs or an epoch below 1.
    """

    def __init__(self, generator_config, labels, snr_db, seed, workers=0, shard_frames=SHARD_FRAMES):
        self._pool = None  # first: close() (and so __del__) works on a half-made object
        if isinstance(generator_config, GeneratorConfig):
            generator_config = generator_config.to_dict()
        self._config = dict(generator_config)
        GeneratorConfig.from_dict(self._config)  # a bad config fails here, not in a worker
        self._labels = np.asarray(labels, dtype=np.int64)
        self._snr = np.asarray(snr_db, dtype=np.float32)
        if self._labels.ndim != 1 or self._snr.shape != self._labels.shape:
            raise ValueError(f"labels, snr_db: expected equal 1-D shapes, got {self._labels.shape} and {self._snr.shape}")
        self._seed = int(seed)
        self._shard_frames = int(shard_frames)
        self._ahead = None  # (epoch, [AsyncResult per shard]) being generated
        if workers:
            # spawn: a forked copy of a process running torch threads can deadlock
            self._pool = multiprocessing.get_context("spawn").Pool(int(workers))

    def _jobs(self, epoch):
        n = len(self._labels)
        return [(self._config, self._seed, epoch, i, self._labels[s : s + self._shard_frames],
                 self._snr[s : s + self._shard_frames])
                for i, s in enumerate(range(0, n, self._shard_frames))]

    def _start(self, epoch):
        self._ahead = (epoch, [self._pool.apply_async(_generate_shard, (job,)) for job in self._jobs(epoch)])

    def frames(self, epoch):
        if epoch < 1:
            raise ValueError(f"epoch: fresh frames start at epoch 1 (epoch 0 trains on the stored split), got {epoch}")
        if self._pool is None:
            return self._concatenate([_generate_shard(job) for job in self._jobs(epoch)])
        if self._ahead is None or self._ahead[0] != epoch:  # the first call, or a jump (resume)
            self._start(epoch)
        shards = [result.get() for result in self._ahead[1]]
        self._start(epoch + 1)
        return self._concatenate(shards)

    def _concatenate(self, shards):
        return np.concatenate(shards) if shards else np.zeros((0, 2, self._config["frame_len"]), np.float32)

    def close(self):
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

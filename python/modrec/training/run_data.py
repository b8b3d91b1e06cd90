"""The data of an experiment: the source a config names, or the synthetic dataset it builds."""

import os

from .config import source_options
from .data.dataset import build_dataset
from .data.generator import GeneratorConfig
from .data.sources import open_source


def _log(*args):
    print(*args, flush=True)


def data_source(cfg, log=_log, progress=True):
    """The experiment's data as a DataSource (training/data/sources.py).

    data.source names a file or dataset (RadioML, SigMF, a built dataset), read as it is. Without
    it the synthetic dataset is built into its cache dir, or reused when it matches the config:
    build_dataset compares a cached dataset with the requested one and refuses a mismatch
    (naming the fields), so a changed seed or size never trains on stale data. A dataset given
    explicitly (data.root / --data-root) is used as it is.
    """
    if cfg.data.source:
        source = open_source(cfg.data.source, **source_options(cfg.data))
        log(f"data {source.spec}: {len(source.classes)} classes, frames of {source.frame_len} samples, "
            f"split {source.scheme_text} (seed {source.seed}): " + ", ".join(f"{k} {v:,}" for k, v in source.splits.items()))
        return source
    root = cfg.data_root
    if cfg.data.root:
        if not (root / "meta.json").is_file():
            raise FileNotFoundError(f"{cfg.source}: data.root {root} is not a dataset (no meta.json)")
        return open_source(f"synthetic:{root}")
    try:
        gen_cfg = GeneratorConfig.from_dict(dict(cfg.data.generator))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{cfg.source}: field 'data.generator': {err}") from None
    log(f"dataset {cfg.data.name} at {root} (seed {cfg.data.seed})")
    build_dataset(
        root,
        gen_cfg,
        seed=cfg.data.seed,
        splits=dict(cfg.data.frames_per_class_snr),
        workers=cfg.data.workers or os.cpu_count() or 1,
        progress=progress,
    )
    return open_source(f"synthetic:{root}")

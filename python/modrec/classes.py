"""Modulation class names, kept as plain data so datasets, models and reports agree.

Standard library only: imported by the training package, the apps and the tests alike.
"""

# RadioML 2016.10a naming and order (O'Shea & West); index i is output column i of a model.
RADIOML2016_CLASSES = (
    "8PSK",
    "AM-DSB",
    "AM-SSB",
    "BPSK",
    "CPFSK",
    "GFSK",
    "PAM4",
    "QAM16",
    "QAM64",
    "QPSK",
    "WBFM",
)

ANALOG_CLASSES = frozenset({"AM-DSB", "AM-SSB", "WBFM"})

# RadioML 2016.10a SNR grid: -20, -18, ..., 18 dB.
RADIOML2016_SNRS_DB = tuple(range(-20, 20, 2))

DEFAULT_FRAME_LEN = 128
DEFAULT_SAMPLES_PER_SYMBOL = 8

# Class label the classifier block emits when the top probability is below min_confidence.
UNKNOWN_CLASS = "unknown"

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

# RadioML 2018.01A (GOLD_XYZ_OSC.0001_1024.hdf5): the class of one-hot column i of its ``Y``.
# The classes.txt that circulates with the file lists another order (it starts '32PSK',
# '16APSK', '32QAM', 'FM', ...), which does not match the data: see radioML/dataset issue #25
# (github.com/radioML/dataset/issues/25), where users found signals under the wrong names. The
# order below is the one of the dataset's paper, T. J. O'Shea, T. Roy, T. C. Clancy, "Over-the-Air
# Deep Learning Based Radio Signal Classification", IEEE J. Sel. Topics Signal Process. 12(1),
# 2018 (its list of the 24 modulations), which the community's corrected loaders use. Override it with
# ``data.classes`` (config) or ``--classes`` (command line).
RADIOML2018_CLASSES = (
    "OOK",
    "4ASK",
    "8ASK",
    "BPSK",
    "QPSK",
    "8PSK",
    "16PSK",
    "32PSK",
    "16APSK",
    "32APSK",
    "64APSK",
    "128APSK",
    "16QAM",
    "32QAM",
    "64QAM",
    "128QAM",
    "256QAM",
    "AM-SSB-WC",
    "AM-SSB-SC",
    "AM-DSB-WC",
    "AM-DSB-SC",
    "FM",
    "GMSK",
    "OQPSK",
)

# The classes.txt order shipped with RadioML 2018.01A, kept only to recognise (and explain) it.
RADIOML2018_CLASSES_TXT = (
    "32PSK", "16APSK", "32QAM", "FM", "GMSK", "32APSK", "OQPSK", "8ASK", "BPSK", "8PSK", "AM-SSB-SC",
    "4ASK", "16PSK", "64APSK", "128QAM", "128APSK", "AM-DSB-SC", "AM-SSB-WC", "64QAM", "QPSK", "256QAM",
    "AM-DSB-WC", "OOK", "16QAM",
)


def canonical_class_name(name):
    """The spelling-independent key of a class name, for matching a model's classes to a dataset's.

    RadioML 2016 writes ``QAM16``, RadioML 2018 ``16QAM``; case, hyphens, underscores and spaces
    also vary between datasets. The key is upper case without separators, with a leading order
    moved behind the letters: ``16QAM``, ``qam-16`` and ``QAM16`` all give ``QAM16``; ``AM-DSB``
    gives ``AMDSB``. Only spelling is folded: ``AM-DSB`` and ``AM-DSB-SC`` stay different classes.
    """
    key = "".join(ch for ch in str(name).upper() if ch.isalnum())
    digits = len(key) - len(key.lstrip("0123456789"))
    if 0 < digits < len(key):
        key = key[digits:] + key[:digits]
    return key


def class_index_map(model_classes, data_classes):
    """For each data class, the index of the same class among ``model_classes`` (matched by
    canonical_class_name), or -1 when the model does not know it. Returns a list of int."""
    index = {canonical_class_name(name): i for i, name in enumerate(model_classes)}
    return [index.get(canonical_class_name(name), -1) for name in data_classes]


# Class label the classifier block emits when the top probability is below min_confidence, or a
# model's open-set score is above its calibrated threshold (contract version 2).
UNKNOWN_CLASS = "unknown"
# Class label the classifier block emits when the model's noise class (contract.NOISE_CLASS) wins:
# the frame holds no signal.
NOISE_LABEL = "noise"

"""Loading RadioML 2016 pickles without letting them run code.

A pickle names the callables that rebuild its objects, and ``pickle.load`` imports and calls
whatever it names: a file passed around the internet can run any code on the machine that
opens it (Python docs, "pickle — Python object serialization", the warning at its top). The
RadioML 2016 files (RML2016.10a_dict.pkl, RML2016.10b.dat, 2016.04C.multisnr.pkl) hold only a
dict of ``(str, int)`` keys to float32 arrays, so this loader admits only the globals numpy
arrays and dtypes need and refuses anything else before it is imported.

They were written by Python 2's cPickle: ``encoding="latin1"`` turns Python 2 ``str`` (both
the modulation names and the arrays' raw bytes) into what numpy expects (numpy's own advice
for Python 2 pickles), and the arrays name ``numpy.core.multiarray._reconstruct``, which numpy
2 renamed to ``numpy._core.multiarray``: both names map to this numpy's function.
"""

import pickle

import numpy as np

from .source import DataSourceError


class UnsafePickleError(DataSourceError):
    """A pickle names a global outside the allowed set; nothing it names was imported or run."""


def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
    except ImportError:
        from numpy.core.multiarray import _reconstruct  # numpy 1.x
    return _reconstruct


def _codecs_encode(text, encoding="utf-8", errors="strict"):
    # Python 3 pickles bytes at protocol 2 as _codecs.encode(str, "latin1"); a file re-saved by
    # Python 3 names it. Only the str -> bytes case is admitted.
    if not isinstance(text, str) or not isinstance(encoding, str):
        raise UnsafePickleError(f"_codecs.encode called with {type(text).__name__}, {type(encoding).__name__}")
    return text.encode(encoding, errors)


# (module, name) -> the object handed to the unpickler. Nothing else is ever imported.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
    ("_codecs", "encode"): lambda: _codecs_encode,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, fh, source):
        super().__init__(fh, encoding="latin1")
        self._source = source

    def find_class(self, module, name):
        factory = _ALLOWED.get((module, name))
        if factory is None:
            allowed = ", ".join(sorted(f"{m}.{n}" for m, n in _ALLOWED))
            raise UnsafePickleError(
                f"{self._source}: refused to load global '{module}.{name}': a RadioML pickle holds only "
                f"numpy arrays in a dict, and this one asks to import something else (a pickle can run "
                f"code when loaded). Allowed globals: {allowed}"
            )
        return factory()

    def persistent_load(self, pid):
        raise UnsafePickleError(f"{self._source}: refused persistent id {pid!r}: RadioML pickles have none")


def load_restricted(path):
    """Unpickle ``path`` admitting only numpy arrays, dtypes and plain containers.

    Returns what the file holds (for RadioML 2016: a dict ``{(modulation, snr_db): float32 array
    (N, 2, 128)}``). Raises UnsafePickleError naming the file and the refused global, before that
    global is imported; DataSourceError naming the file when it is not a complete pickle.
    """
    with open(path, "rb") as fh:
        try:
            return _RestrictedUnpickler(fh, path).load()
        except UnsafePickleError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as err:
            raise DataSourceError(f"{path}: not a readable pickle ({type(err).__name__}: {err}); a truncated "
                             f"download ends like this") from None

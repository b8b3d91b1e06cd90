"""gr-modrec: lightweight automatic modulation recognition for GNU Radio.

GNU Radio blocks are loaded lazily (PEP 562 ``__getattr__``) so that ``gnuradio.modrec.training``
imports on a machine that has PyTorch but no GNU Radio, e.g. a GPU box or a cluster node.
"""

import sys
import types

__version__ = "0.1.0"  # keep equal to VERSION_MAJOR.VERSION_API.VERSION_ABI in CMakeLists.txt

# block name -> submodule that defines it
_BLOCKS = {
    "classifier": ".classifier",
    "sigmf_annotation_sink": ".sigmf_annotation_sink",
    "classification_sink": ".classification_sink",
}


class _Package(types.ModuleType):
    """This package's module type: ``modrec.<block>`` is the block even after its submodule (of the
    same name, the gr_modtool layout) was imported on its own. Importing a submodule binds the
    submodule to the package attribute of that name, which would otherwise hide the block:
    ``from gnuradio.modrec.classifier import X`` followed by ``modrec.classifier()`` called a
    module."""

    def __getattribute__(self, name):
        value = super().__getattribute__(name)
        if name in _BLOCKS and isinstance(value, types.ModuleType):
            return getattr(value, name)
        return value


sys.modules[__name__].__class__ = _Package


def __getattr__(name):
    if name in _BLOCKS:
        import importlib

        module = importlib.import_module(_BLOCKS[name], __name__)
        # Importing the submodule binds its *module* object to this package attribute; rebind
        # the block class so that later lookups find the class, not the module.
        block = getattr(module, name)
        globals()[name] = block
        return block
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_BLOCKS))

"""How a qa_*.py file gets a block of the package, run by ctest or by hand.

Through the package's block registry, as users get it (importing the submodule directly would
bind the module, not the class, to ``modrec.<block>``). On a plain run without tests/conftest.py,
possibly with an older install of gr-modrec shadowing the checkout, the source-tree shim of
conftest.py is built and the install forgotten.
"""

import importlib
import sys


def package_block(name):
    """(the ``gnuradio.modrec`` module, its block ``name``)."""
    try:
        from gnuradio import modrec

        return modrec, getattr(modrec, name)
    except (ImportError, AttributeError):
        import conftest  # noqa: F401

        for module in [m for m in sys.modules if m == "gnuradio.modrec" or m.startswith("gnuradio.modrec.")]:
            del sys.modules[module]
        modrec = importlib.import_module("gnuradio.modrec")
        return modrec, getattr(modrec, name)

"""Make the source tree importable as ``gnuradio.modrec`` without installing it.

``build/pytest_modules/gnuradio/modrec/`` holds a symlink to each entry of ``python/modrec`` (so
edits are live; the links are made again at every run, so new files join) and one to the compiled
bindings (``modrec_python*.so``, from the build directory: the classifier's C++ core), and is put
first on sys.path. GNU Radio's own ``gnuradio/__init__.py`` extends its ``__path__`` over sys.path
(pkgutil.extend_path); where GNU Radio is absent, ``gnuradio`` is a namespace package and the
same shim works.
"""

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_SHIM = ROOT / "build" / "pytest_modules"
_PACKAGE = _SHIM / "gnuradio" / "modrec"


def _link_package():
    if _PACKAGE.is_symlink():  # the layout before the bindings joined: one link to the directory
        _PACKAGE.unlink()
    _PACKAGE.mkdir(parents=True, exist_ok=True)
    sources = {p.name: p for p in (ROOT / "python" / "modrec").iterdir() if p.name != "__pycache__"}
    built = sorted((ROOT / "build" / "python" / "modrec" / "bindings").glob("modrec_python*.so"))
    sources.update({p.name: p for p in built})
    for entry in _PACKAGE.iterdir():
        if entry.name == "__pycache__":
            continue
        if entry.name not in sources or not entry.is_symlink():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    for name, target in sources.items():
        link = _PACKAGE / name
        if not (link.is_symlink() and link.resolve() == target.resolve()):
            link.unlink(missing_ok=True)
            link.symlink_to(target, target_is_directory=target.is_dir())


_link_package()
sys.path.insert(0, str(_SHIM))

try:
    import gnuradio

    if str(_PACKAGE.parent) not in list(gnuradio.__path__):
        gnuradio.__path__.insert(0, str(_PACKAGE.parent))
except ImportError:
    pass

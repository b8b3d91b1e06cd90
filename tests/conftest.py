"""Make the source tree importable as ``gnuradio.modrec`` without installing it.

A symlink ``build/pytest_modules/gnuradio/modrec -> python/modrec`` is put first on sys.path, so
edits are live. GNU Radio's own ``gnuradio/__init__.py`` extends its ``__path__`` over sys.path
(pkgutil.extend_path); where GNU Radio is absent, ``gnuradio`` is a namespace package and the
same shim works.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_SHIM = ROOT / "build" / "pytest_modules"
_LINK = _SHIM / "gnuradio" / "modrec"
_LINK.parent.mkdir(parents=True, exist_ok=True)
if not _LINK.is_symlink():
    _LINK.symlink_to(ROOT / "python" / "modrec", target_is_directory=True)
sys.path.insert(0, str(_SHIM))

try:
    import gnuradio

    if str(_LINK.parent) not in list(gnuradio.__path__):
        gnuradio.__path__.insert(0, str(_LINK.parent))
except ImportError:
    pass

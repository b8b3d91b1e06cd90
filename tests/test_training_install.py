"""The training-only install (`pip install .`, for GPU boxes and clusters without GNU Radio):
the wheel carries every training module and the `modrec` command works from it alone."""

import subprocess
import sys
import textwrap

from conftest import ROOT


def test_pip_install_ships_a_working_training_package(tmp_path):
    target = tmp_path / "site"
    # Offline (no build isolation, no dependencies): only our own files are under test here.
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(target), str(ROOT)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    assert not (target / "CMakeFiles").exists(), "the CMake build tree leaked into the wheel"
    code = textwrap.dedent(
        f"""
        import importlib, pkgutil, sys, types
        # No GNU Radio on this node: `gnuradio` is only the namespace that holds the installed modrec.
        namespace = types.ModuleType("gnuradio")
        namespace.__path__ = [{str(target / 'gnuradio')!r}]
        sys.modules["gnuradio"] = namespace
        sys.modules["pmt"] = None
        import gnuradio.modrec.training as training
        assert training.__file__.startswith({str(target)!r}), training.__file__
        for m in pkgutil.walk_packages(training.__path__, training.__name__ + "."):
            if not m.name.endswith("__main__"):
                importlib.import_module(m.name)
        from gnuradio.modrec.training.cli import main
        main(["models"])
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "cnn3" in result.stdout

"""The training-only install (`pip install .`, for GPU boxes and clusters without GNU Radio):
the wheel carries every module of python/modrec, so `modrec` can train and export every model
(early-exit ones too) from it alone (issue 20: a hand-written package list left out
training/exits, and importing the installed training package did not notice, since nothing
imports exits until an early-exit model is trained or exported).

The wheel is built once, offline (no build isolation, no index, no dependencies: only our own
packaging is under test), from a copy of what the build reads: an in-tree build would reuse
build/pip/lib, whose modules from an earlier build end up in the wheel whatever pyproject.toml
says now, and would race with other builds in this checkout.
"""

import ast
import shutil
import subprocess
import sys
import textwrap
import zipfile

import pytest

from conftest import ROOT

SOURCE = ROOT / "python" / "modrec"
PREFIX = "gnuradio/modrec/"
# Modules of python/modrec (paths relative to it) the wheel deliberately leaves out: none. Package
# discovery cannot leave out single modules (see pyproject.toml), so the qa_*.py tests and the
# bindings/ generator scripts ship too, inert. A module listed here must not be one that
# training/** or runtime/** imports (test_every_module_training_and_runtime_import_ships).
LEFT_OUT = frozenset()
# Non-.py files the package reads at run time, shipped as package data: none.
DATA_FILES = frozenset()


def _source_modules():
    """python/modrec's .py files, relative to it, less LEFT_OUT."""
    found = {p.relative_to(SOURCE).as_posix() for p in SOURCE.rglob("*.py") if "__pycache__" not in p.parts}
    return found - LEFT_OUT


def _dotted(relpath):
    name = "gnuradio.modrec." + relpath[: -len(".py")].replace("/", ".")
    return name[: -len(".__init__")] if name.endswith(".__init__") else name


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("training_wheel")
    src = tmp / "src"
    src.mkdir()
    for f in ROOT.iterdir():  # pyproject.toml, setup.cfg, README.md, ...: not build/, not *.egg-info/
        if f.is_file():
            shutil.copy2(f, src)
    shutil.copytree(ROOT / "python", src / "python", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = tmp / "dist"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", str(dist), str(src)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    (whl,) = dist.glob("*.whl")
    with zipfile.ZipFile(whl) as z:
        names = z.namelist()
    return whl, names


def test_wheel_ships_every_module_of_the_source_tree(wheel):
    _, names = wheel
    shipped = {n[len(PREFIX):] for n in names if n.startswith(PREFIX) and n.endswith(".py")}
    missing = sorted(_dotted(m) for m in _source_modules() - shipped)
    assert not missing, f"the wheel leaves out {len(missing)} module(s) of python/modrec: {', '.join(missing)}"
    unknown = sorted(_dotted(m) for m in shipped - _source_modules())
    assert not unknown, f"the wheel ships modules python/modrec does not have (stale build?): {', '.join(unknown)}"
    # `gnuradio` stays a namespace: an __init__.py there would shadow GNU Radio's own package.
    assert "gnuradio/__init__.py" not in names
    outside = sorted(n for n in names if not n.startswith(PREFIX) and ".dist-info/" not in n)
    assert not outside, f"the wheel ships files outside gnuradio/modrec (CMake tree, build/?): {outside[:10]}"
    data = {n[len(PREFIX):] for n in names if n.startswith(PREFIX) and not n.endswith(".py")}
    assert data == DATA_FILES, f"package data differs from DATA_FILES: {sorted(data ^ DATA_FILES)}"
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    with zipfile.ZipFile(wheel[0]) as z:
        assert "modrec = gnuradio.modrec.training.cli:main" in z.read(entry_points).decode()


def _imported_modules(path):
    """gnuradio.modrec modules (as paths relative to python/modrec) that a source file imports,
    at the top or inside a function: `from .x import y` may name module x.y or attribute y of x,
    so both candidates are returned, and the caller keeps those the source tree has."""
    package = path.relative_to(SOURCE).parent.parts  # __init__.py: its own package
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                if node.level - 1 > len(package):
                    continue  # above gnuradio.modrec
                base = list(package[: len(package) - (node.level - 1)])
            elif node.module and (node.module + ".").startswith("gnuradio.modrec."):
                base = []
            else:
                continue
            mod = base + (node.module.split(".") if node.module else [])
            if not node.level:
                mod = mod[2:]  # drop gnuradio.modrec
            found.add(tuple(mod))
            found.update(tuple(mod + [a.name]) for a in node.names)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("gnuradio.modrec."):
                    found.add(tuple(a.name.split(".")[2:]))
    relpaths = set()
    for mod in found:
        for i in range(len(mod) + 1):  # importing a.b.c imports a and a.b too
            parts = "/".join(mod[:i])
            relpaths.update({f"{parts}/__init__.py".lstrip("/"), f"{parts}.py"})
    return relpaths


def test_every_module_training_and_runtime_import_ships(wheel):
    _, names = wheel
    shipped = {n[len(PREFIX):] for n in names if n.startswith(PREFIX)}
    source = {p.relative_to(SOURCE).as_posix() for p in SOURCE.rglob("*.py")}
    needed = {}
    for sub in ("training", "runtime"):
        for f in sorted((SOURCE / sub).rglob("*.py")):
            for m in _imported_modules(f) & source:
                needed.setdefault(m, f.relative_to(SOURCE).as_posix())
    assert "training/exits/export.py" in needed  # the lazy import of issue 20 is seen
    missing = sorted(f"{_dotted(m)} (imported by {by})" for m, by in needed.items() if m not in shipped)
    assert not missing, "the wheel leaves out modules the training/runtime code imports: " + ", ".join(missing)


def test_installed_wheel_imports_and_runs_the_training_package(wheel, tmp_path):
    whl, _ = wheel
    target = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(target), str(whl)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    code = textwrap.dedent(
        f"""
        import importlib, pkgutil, sys, types
        # As on a node without GNU Radio: `gnuradio` is only the namespace that holds the installed
        # modrec (and not GNU Radio's package, nor the checkout, whatever sys.path holds here).
        namespace = types.ModuleType("gnuradio")
        namespace.__path__ = [{str(target / 'gnuradio')!r}]
        sys.modules["gnuradio"] = namespace
        sys.modules["pmt"] = None
        import gnuradio.modrec.training as training
        import gnuradio.modrec.runtime as runtime
        for package in (training, runtime):
            assert package.__file__.startswith({str(target)!r}), package.__file__
            for m in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
                if not m.name.endswith("__main__"):
                    print("imported", importlib.import_module(m.name).__name__)
        # What training and export of an early-exit model import only when they run (issue 20).
        from gnuradio.modrec.training.exits import ExitTraining, calibrate_threshold
        from gnuradio.modrec.training.exits.export import export_early_exit
        from gnuradio.modrec.training.exits.gate import fit_gate
        from gnuradio.modrec.training.exits.evaluate import evaluate_early_exit, write_exits_report
        from gnuradio.modrec.training.cli import main
        main(["models"])
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "imported gnuradio.modrec.training.exits.export" in result.stdout
    assert "imported gnuradio.modrec.runtime.onnx_model" in result.stdout
    assert "cnn3" in result.stdout

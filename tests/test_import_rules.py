"""The two rules of the architecture, checked statically and by importing for real.

* The runtime (blocks, ONNX inference) never imports torch: edge devices have numpy and
  onnxruntime only.
* The training package never imports GNU Radio: it must run where only PyTorch is installed.
"""

import ast
import os
import subprocess
import sys
import textwrap
from conftest import ROOT, _SHIM

PACKAGE = ROOT / "python" / "modrec"
TRAINING = PACKAGE / "training"
# Modules the training side may use: the model contract and the class list (standard library
# only) and the runtime (numpy + onnxruntime: evaluating an ONNX model uses the blocks' loader).
# `__version__` is a string in the package's __init__, which loads the blocks lazily (PEP 562): reading
# it imports no GNU Radio (`modrec --version`).
SHARED = {"contract", "classes", "runtime", "__version__"}


def _imported_modules(path, package_parts=None):
    """Absolute module names a file imports; relative imports resolved against its package
    (``package_parts``, by default derived from where the file sits under python/modrec)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    if package_parts is None:
        package_parts = ["gnuradio", "modrec", *path.parent.relative_to(PACKAGE).parts]
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
                if node.module:
                    names.append(module)
                else:
                    names += [f"{module}.{alias.name}" for alias in node.names]
            else:
                names.append(node.module)
    return names


def _runtime_files():
    training = set(TRAINING.rglob("*.py"))
    return [p for p in PACKAGE.rglob("*.py") if p not in training and not p.name.startswith("qa_")]


def test_runtime_sources_never_import_torch():
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _runtime_files()
        for name in _imported_modules(path)
        if name == "torch" or name.startswith("torch.")
    ]
    assert not offenders, "runtime must not import torch:\n" + "\n".join(offenders)


def _gnuradio_offenders(names):
    offenders = []
    for name in names:
        top = name.split(".")[0]
        if top == "pmt":
            offenders.append(name)
        elif top == "gnuradio":
            inside_training = name.startswith("gnuradio.modrec.training")
            shared = len(name.split(".")) > 2 and name.split(".")[2] in SHARED
            if not (inside_training or shared):
                offenders.append(name)
    return offenders


def test_training_sources_never_import_gnuradio():
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in TRAINING.rglob("*.py")
        for name in _gnuradio_offenders(_imported_modules(path))
    ]
    assert not offenders, "training must not import GNU Radio or the blocks:\n" + "\n".join(offenders)


def test_the_rule_catches_relative_imports_of_the_block(tmp_path):
    # Guards the checker itself: a training module reaching the block through a relative import,
    # or GNU Radio directly, must be reported; the shared modules must not.
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from ..classifier import classifier\nfrom .. import runtime\nimport pmt\n"
        "from gnuradio import gr\nfrom ..contract import encode_metadata\nfrom .data import dataset\n"
    )
    found = _imported_modules(probe, ["gnuradio", "modrec", "training"])
    assert _gnuradio_offenders(found) == ["gnuradio.modrec.classifier", "pmt", "gnuradio"]


def _run_isolated(code):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


BLOCKER = """
import importlib.abc, sys
class Blocker(importlib.abc.MetaPathFinder):
    def __init__(self, blocked):
        self.blocked = blocked
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.blocked or name in self.blocked:
            raise ImportError(f"blocked by test: {name}")
        return None
"""


def test_runtime_and_block_import_without_torch():
    result = _run_isolated(
        BLOCKER
        + f"""
sys.meta_path.insert(0, Blocker({{"torch"}}))
sys.path.insert(0, {str(_SHIM)!r})
import gnuradio
gnuradio.__path__.insert(0, {str(_SHIM / 'gnuradio')!r})
from gnuradio import modrec
import gnuradio.modrec.runtime, gnuradio.modrec.classifier
block = modrec.classifier
assert "torch" not in sys.modules
print("ok")
"""
    )
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr


def test_training_imports_without_gnuradio():
    # A cluster node: no GNU Radio installed, so `gnuradio` is only the namespace that holds
    # modrec (GNU Radio's own package is replaced, its modules and pmt blocked). Every training
    # module must import.
    result = _run_isolated(
        BLOCKER
        + f"""
import types
namespace = types.ModuleType("gnuradio")
namespace.__path__ = [{str(_SHIM / 'gnuradio')!r}]
sys.modules["gnuradio"] = namespace
sys.meta_path.insert(0, Blocker({{"pmt", "gnuradio.gr", "gnuradio.blocks", "gnuradio.gr_unittest"}}))
import pkgutil, importlib
import gnuradio.modrec.training as training
names = [m.name for m in pkgutil.walk_packages(training.__path__, training.__name__ + ".")]
for name in names:
    if name.endswith("__main__"):
        continue
    importlib.import_module(name)
assert not any(n == "pmt" or n.startswith("gnuradio.gr") for n in sys.modules)
print("imported", len(names))
"""
    )
    assert result.returncode == 0 and "imported" in result.stdout, result.stderr


def test_a_block_is_the_block_even_after_its_module_was_imported():
    # gr_modtool's layout names a block's module after the block: importing the module first
    # must not leave `modrec.<block>` pointing at the module
    code = (
        "from gnuradio.modrec.sigmf_annotation_sink import sigmf_annotation_sink as direct\n"
        "import gnuradio.modrec.classifier\n"
        "from gnuradio import modrec\n"
        "assert modrec.sigmf_annotation_sink is direct, modrec.sigmf_annotation_sink\n"
        "assert isinstance(modrec.classifier, type), modrec.classifier\n"
    )
    env = {**os.environ, "PYTHONPATH": str(_SHIM)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr


def _module_name(path):
    parts = ["gnuradio", "modrec", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_import_circles_in_the_package():
    # Imports inside functions count: a function-local import is the usual way a circle hides.
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py") if not p.name.startswith("qa_")}
    graph = {}
    for name, path in files.items():
        parts = name.split(".") if path.name != "__init__.py" else name.split(".") + ["__init__"]
        targets = set()
        for imported in _imported_modules(path, parts[:-1]):
            # "from .pkg import name" names either a module or an attribute: keep the longest module
            while imported and imported not in files:
                imported = imported.rpartition(".")[0]
            if imported and imported != name and imported != "gnuradio.modrec":
                targets.add(imported)
        graph[name] = targets
    index, low, on_stack, stack, circles = {}, {}, set(), [], []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not circles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in circles)

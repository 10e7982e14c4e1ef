"""The package's layers, as README "Layout" draws them, hold in its imports.

  common        leaf utilities (argument checks, name lookup, step specs,
                ConfigError, the workdir's files, command-line failure)
  core          the science: data, schedules, model, heads, baselines, experiment
  measurements  the plug-ins config.measurements names, and in methods/ their
                algorithms (SGLD/LLC, energy distance, predictive Monte Carlo,
                error metrics, the snapshot file)
  training      the loop, run groups, validation, multi-host
  launching     sweep grids and the ledger of a sweep's runs
  analysis      command-line tools reading workdirs: export, plots, phase, ...
  main          temporal_icl/main.py, the training binary

A module may import its own layer and the layers below it, never one above; no
two modules share a file name (but __init__.py, and the tests); and no import
cycle exists between modules, counting the imports deferred into functions.
Every check reads the source with `ast`, so it sees what an import-time check
cannot, and each is shown to fail on a broken example.
"""

import ast
import collections
import os

import pytest

PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYERS = ("common", "core", "measurements", "training", "launching", "analysis", "main")


def modules(root=PACKAGE):
  """{dotted name: path} of every module of the package but its tests."""
  found = {}
  for dirpath, dirnames, files in os.walk(root):
    dirnames[:] = sorted(d for d in dirnames if d not in ("tests", "__pycache__"))
    for f in sorted(files):
      if f.endswith(".py"):
        path = os.path.join(dirpath, f)
        parts = os.path.relpath(path, os.path.dirname(root))[:-3].split(os.sep)
        if parts[-1] == "__init__":
          parts = parts[:-1]
        found[".".join(parts)] = path
  return found


def imports(path, name, known):
  """The package's modules that the module `name` (at `path`) imports, anywhere in
  it (functions included); `from p import m` counts as m when m is a module."""
  is_package = path.endswith("__init__.py")
  found = set()
  for node in ast.walk(ast.parse(open(path).read())):
    if isinstance(node, ast.Import):
      targets = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        parent = name.split(".") if is_package else name.split(".")[:-1]
        parent = parent[:len(parent) - node.level + 1]
        base = ".".join(parent + ([base] if base else []))
      targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                 for a in node.names]
    else:
      continue
    for target in targets:
      while target and target not in known:  # a name inside a module -> the module
        target = target.rpartition(".")[0]
      if target and target != name:
        found.add(target)
  return found


def graph(root=PACKAGE):
  known = modules(root)
  return {name: imports(path, name, known) for name, path in known.items()}


def layer(name):
  """The layer of a dotted module name: its first part inside the package (None for
  the package's own __init__, which is below every layer)."""
  parts = name.split(".")
  return parts[1] if len(parts) > 1 else None


def rank(layer_name):
  return -1 if layer_name is None else LAYERS.index(layer_name)


def repeated_names(root=PACKAGE):
  """File names (but __init__.py) that two modules share."""
  by_name = collections.defaultdict(list)
  for name, path in modules(root).items():
    if not path.endswith("__init__.py"):
      by_name[os.path.basename(path)].append(name)
  return {f: sorted(names) for f, names in by_name.items() if len(names) > 1}


def upward_imports(edges):
  """'a -> b' for each import of a module from a layer above a's."""
  return [f"{a} -> {b}" for a, targets in sorted(edges.items()) for b in sorted(targets)
          if rank(layer(b)) > rank(layer(a))]


def cycles(edges):
  """One cycle (a list of modules, first = last) per strongly connected component
  of more than one module."""
  index, low, stack, on_stack, found = {}, {}, [], set(), []

  def visit(v):  # Tarjan's algorithm
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in edges.get(v, ()):
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
        found.append(sorted(component))

  for v in sorted(edges):
    if v not in index:
      visit(v)
  return found


def test_no_two_modules_share_a_file_name():
  assert repeated_names() == {}


def test_no_import_cycle():
  assert cycles(graph()) == []


def test_no_layer_imports_a_layer_above_it():
  assert upward_imports(graph()) == []


def test_every_module_is_in_a_layer():
  assert sorted(n for n in modules() if layer(n) not in LAYERS + (None,)) == []


@pytest.fixture
def broken(tmp_path):
  """A package `temporal_icl` of a few files in tmp_path, written by the test."""
  root = tmp_path / "temporal_icl"

  def write(files):
    for path, text in files.items():
      (root / path).parent.mkdir(parents=True, exist_ok=True)
      for d in (root / path).relative_to(root).parents:
        (root / d / "__init__.py").touch()
      (root / path).write_text(text)
    return str(root)
  return write


def test_the_checks_fail_on_broken_trees(broken):
  root = broken({
      "core/data.py": "def f():\n  from temporal_icl.training import train\n",  # deferred
      "training/train.py": "from temporal_icl.core import data\n",
      "analysis/data.py": "from ..core import data\n",
      "measurements/llc.py": "from . import methods\nfrom temporal_icl.training import train\n",
      "measurements/methods/__init__.py": "from temporal_icl.measurements import llc\n",
  })
  assert repeated_names(root) == {"data.py": ["temporal_icl.analysis.data",
                                              "temporal_icl.core.data"]}
  edges = graph(root)
  assert edges["temporal_icl.analysis.data"] == {"temporal_icl.core.data"}
  assert sorted(map(tuple, cycles(edges))) == [
      ("temporal_icl.core.data", "temporal_icl.training.train"),
      ("temporal_icl.measurements.llc", "temporal_icl.measurements.methods")]
  assert upward_imports(edges) == ["temporal_icl.core.data -> temporal_icl.training.train",
                                   "temporal_icl.measurements.llc -> temporal_icl.training.train"]

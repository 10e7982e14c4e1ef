"""BUILD must cover every module and test, with deps matching the imports.

Bazel cannot run offline here (it downloads its rules), so this test evaluates
the BUILD file as Starlark-compatible Python with recording stand-ins for the
rules, then checks it against the tree.
"""

import ast
import glob as globlib
import os


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOURCE_DIRS = ("temporal_icl", "configs", "benchmarks", "launch", "examples")


def load_targets():
  targets = {}

  def rule(kind):
    def record(name, srcs=(), deps=(), **kwargs):
      targets[name] = dict(kind=kind, srcs=list(srcs), deps=list(deps), **kwargs)
    return record

  def glob(patterns, exclude=()):
    return sorted(os.path.relpath(p, REPO) for pattern in patterns
                  for p in globlib.glob(os.path.join(REPO, pattern))
                  if os.path.relpath(p, REPO) not in exclude)

  namespace = dict(load=lambda *a: None, package=lambda **k: None, glob=glob,
                   requirement=lambda name: f"@pip//{name}",
                   py_library=rule("py_library"), py_binary=rule("py_binary"),
                   py_test=rule("py_test"))
  with open(os.path.join(REPO, "BUILD")) as f:
    exec(compile(f.read(), "BUILD", "exec"), namespace)  # pylint: disable=exec-used
  return targets


def python_files():
  files = []
  for d in SOURCE_DIRS:
    files += glob_py(os.path.join(REPO, d))
  return sorted(os.path.relpath(f, REPO) for f in files)


def glob_py(root):
  return [os.path.join(dp, f) for dp, _, fs in os.walk(root) for f in fs
          if f.endswith(".py")]


def owner_of(targets):
  owners = {}
  for name, t in targets.items():
    for src in t["srcs"]:
      owners[src] = name
  return owners


def local_imports(path):
  """Repo files imported by `path` (temporal_icl.* and configs.* modules)."""
  tree = ast.parse(open(os.path.join(REPO, path)).read())
  names = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      names.update(f"{node.module}.{a.name}" for a in node.names)
      names.add(node.module)
    elif isinstance(node, ast.Import):
      names.update(a.name for a in node.names)
  files = set()
  for name in names:
    if name.split(".")[0] not in ("temporal_icl", "configs"):
      continue
    base = os.path.join(*name.split("."))
    for candidate in (base + ".py", os.path.join(base, "__init__.py")):
      if os.path.exists(os.path.join(REPO, candidate)):
        files.add(candidate)
  return files


def test_every_python_file_belongs_to_a_target():
  owners = owner_of(load_targets())
  missing = [f for f in python_files() if f not in owners]
  assert not missing, f"files without a BUILD target: {missing}"


def test_every_test_file_has_a_py_test():
  targets = load_targets()
  tests = {t["main"] for t in targets.values() if t["kind"] == "py_test"}
  files = [f for f in python_files() if f.endswith("_test.py")]
  assert sorted(tests) == files


def dependency_problems(targets):
  """One line per local dep that is unknown, or per local import without its dep."""
  owners = owner_of(targets)
  problems = []
  for name, t in targets.items():
    local = [d[1:] for d in t["deps"] if d.startswith(":")]
    problems += [f"{name} depends on unknown :{d}" for d in local if d not in targets]
    for src in t["srcs"]:
      for imported in local_imports(src):
        owner = owners.get(imported)
        if imported.endswith("__init__.py"):
          continue  # package markers: Bazel creates them
        if owner not in (None, name) and owner not in local:
          problems.append(f"{name} ({src}) imports {imported} but lacks :{owner}")
  return problems


def test_local_deps_exist_and_match_imports():
  problems = dependency_problems(load_targets())
  assert not problems, "\n".join(problems)


def test_the_checker_catches_a_missing_and_an_unknown_dep():
  targets = load_targets()
  targets["train"]["deps"].remove(":experiment")
  targets["export"]["deps"].append(":no_such_target")
  assert sorted(dependency_problems(targets)) == [
      "export depends on unknown :no_such_target",
      "train (temporal_icl/train.py) imports temporal_icl/experiment.py but lacks "
      ":experiment"]

"""BUILD and MODULE.bazel must describe a Bazel build that would really test.

Bazel cannot run offline here (it downloads its rules), so this test evaluates
BUILD and MODULE.bazel as Starlark-compatible Python with recording stand-ins
for the rules, then checks them against the tree, the lock and setup.py:

- every module and test file has a target, and local imports have their deps;
- third-party imports are covered by a requirement() among the target's deps
  (direct or through its local deps), except optional ones (inside a
  `try: ... except ImportError`);
- every requirement("x") is pinned in requirements_lock.txt, and the lock and
  requirements.txt hold versions inside setup.py's ranges;
- every py_test runs pytest_main.py, which runs pytest on the target's own file;
- the rules come from @rules_python, and MODULE.bazel's pip hub is the one BUILD
  loads, built from the lock that exists, for the toolchain's Python.

Each checker takes the text it checks, and is shown to fail on broken input.
"""

import ast
import glob as globlib
import importlib.metadata
import importlib.util
import os
import re
import subprocess
import sys

from packaging.requirements import Requirement
import pytest

from temporal_icl.tests import pytest_main

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOURCE_DIRS = ("temporal_icl", "configs", "benchmarks", "launch", "examples", "tools")
RUNNER = "temporal_icl/tests/pytest_main.py"
LOCK = "requirements_lock.txt"
RUNTIME_REQUIREMENTS = "requirements.txt"
LOCAL_PACKAGES = {"temporal_icl", "configs", "benchmarks", "launch", "examples", "tools"}

# Top-level import name -> the distribution a requirement() names.  An import missing
# here is reported, so a new dependency cannot slip past the check.
IMPORT_TO_REQUIREMENT = {
    "absl": "absl-py",
    "clu": "clu",
    "gin": "gin-config",
    "haiku": "dm-haiku",
    "jax": "jax",
    "matplotlib": "matplotlib",
    "ml_collections": "ml-collections",
    "numpy": "numpy",
    "optax": "optax",
    "orbax": "orbax-checkpoint",
    "packaging": "packaging",
    "pytest": "pytest",
    "scipy": "scipy",
    "tensorboard": "tensorboard",
    "tensorflow": "tensorflow-cpu",
    "tensorflow_datasets": "tensorflow-datasets",
    "xmanager": "xmanager",
}


def read(path):
  with open(os.path.join(REPO, path)) as f:
    return f.read()


def exists(path):
  return os.path.isfile(os.path.join(REPO, path))


def canonical(name):
  """PEP 503 name, as pip and rules_python compare them: 'ML_Collections' -> 'ml-collections'."""
  return re.sub(r"[-_.]+", "-", name).lower()


def evaluate_build(text):
  """(targets, loads) of a BUILD text: {name: attributes}, [(label, symbols)]."""
  targets, loads = {}, []

  def rule(kind):
    def record(name, srcs=(), deps=(), **kwargs):
      targets[name] = dict(kind=kind, srcs=list(srcs), deps=list(deps), **kwargs)
    return record

  def glob(patterns, exclude=()):  # files only, as Bazel's glob
    return sorted(os.path.relpath(p, REPO) for pattern in patterns
                  for p in globlib.glob(os.path.join(REPO, pattern), recursive=True)
                  if os.path.isfile(p) and os.path.relpath(p, REPO) not in exclude)

  namespace = dict(load=lambda label, *symbols: loads.append((label, symbols)),
                   package=lambda **k: None, glob=glob,
                   requirement=lambda name: f"@pip//{canonical(name)}",
                   py_library=rule("py_library"), py_binary=rule("py_binary"),
                   py_test=rule("py_test"))
  exec(compile(text, "BUILD", "exec"), namespace)  # pylint: disable=exec-used
  return targets, loads


def load_targets(text=None):
  return evaluate_build(read("BUILD") if text is None else text)[0]


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


def imported_modules(path):
  """[(module name, optional)] of every absolute import in `path`; optional when the
  import sits in the body of a `try:` that catches ImportError."""
  tree = ast.parse(read(path))
  optional = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Try) and any(
        h.type is not None and any(isinstance(n, ast.Name) and n.id in (
            "ImportError", "ModuleNotFoundError") for n in ast.walk(h.type))
        for h in node.handlers):
      for statement in node.body:
        optional.update(id(n) for n in ast.walk(statement))
  found = []
  for node in ast.walk(tree):
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      found += [(f"{node.module}.{a.name}", id(node) in optional) for a in node.names]
      found.append((node.module, id(node) in optional))
    elif isinstance(node, ast.Import):
      found += [(a.name, id(node) in optional) for a in node.names]
  return found


def local_imports(path):
  """Repo files imported by `path` (temporal_icl.* and configs.* modules)."""
  files = set()
  for name, _ in imported_modules(path):
    if name.split(".")[0] not in ("temporal_icl", "configs"):
      continue
    base = os.path.join(*name.split("."))
    for candidate in (base + ".py", os.path.join(base, "__init__.py")):
      if os.path.exists(os.path.join(REPO, candidate)):
        files.add(candidate)
  return files


def missing_files(targets):
  """Files that targets name (srcs, data, main) but the tree lacks."""
  named = {(name, f) for name, t in targets.items()
           for f in t["srcs"] + [d for d in t.get("data", []) if not d.startswith(":")]
           + ([t["main"]] if "main" in t else [])}
  return sorted(f"{name}: {f}" for name, f in named
                if not os.path.isfile(os.path.join(REPO, f)))


def test_every_file_a_target_names_exists():
  missing = missing_files(load_targets())
  assert not missing, f"BUILD names files the tree lacks: {missing}"


def test_every_python_file_belongs_to_a_target():
  owners = owner_of(load_targets())
  missing = [f for f in python_files() if f not in owners]
  assert not missing, f"files without a BUILD target: {missing}"


def own_test_file(name):
  return f"temporal_icl/tests/{name}.py"


def test_every_test_file_has_a_py_test():
  targets = load_targets()
  tests = {own_test_file(n) for n, t in targets.items() if t["kind"] == "py_test"}
  files = [f for f in python_files() if f.endswith("_test.py")]
  assert sorted(tests) == files


def dependency_problems(targets):
  """One line per local dep that is unknown, or per local import without its dep."""
  owners = owner_of(targets)
  problems = []
  for name, t in targets.items():
    local = [d[1:] for d in t["deps"] if d.startswith(":")]
    problems += [f"{name} depends on unknown :{d}" for d in local if d not in targets]
    for src in filter(exists, t["srcs"]):
      for imported in local_imports(src):
        owner = owners.get(imported)
        if imported.endswith("__init__.py"):
          continue  # package markers: Bazel creates them
        if owner is not None and imported not in t["srcs"] and owner not in local:
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
      "train (temporal_icl/training/train.py) imports temporal_icl/core/experiment.py but lacks "
      ":experiment"]


# --- Third-party imports ---------------------------------------------------------

def requirements_reachable(targets, name, seen=None):
  """Canonical names of the requirement()s of `name` and of its local deps."""
  seen = set() if seen is None else seen
  if name in seen or name not in targets:
    return set()
  seen.add(name)
  found = set()
  for dep in targets[name]["deps"]:
    if dep.startswith("@pip//"):
      found.add(dep[len("@pip//"):])
    elif dep.startswith(":"):
      found |= requirements_reachable(targets, dep[1:], seen)
  return found


def script_modules():
  """Modules imported by file name after a sys.path insert (launch/local_launch.py...)."""
  return {os.path.splitext(os.path.basename(f))[0] for f in python_files()
          if f.split("/")[0] in ("benchmarks", "launch", "tools")}


def third_party_problems(targets):
  """One line per non-optional third-party import that no requirement() covers."""
  local = LOCAL_PACKAGES | script_modules()
  problems = []
  for name, t in targets.items():
    available = requirements_reachable(targets, name)
    for src in filter(exists, t["srcs"]):
      tops = sorted({m.split(".")[0] for m, optional in imported_modules(src)
                     if not optional})
      for top in tops:
        if top in sys.stdlib_module_names or top in local:
          continue
        requirement = IMPORT_TO_REQUIREMENT.get(top)
        if requirement is None:
          problems.append(f"{name} ({src}) imports {top}, which IMPORT_TO_REQUIREMENT "
                          "does not map to a distribution")
        elif canonical(requirement) not in available:
          problems.append(f"{name} ({src}) imports {top} but no requirement"
                          f"(\"{requirement}\") is among its deps")
  return problems


def test_third_party_imports_have_requirements():
  problems = third_party_problems(load_targets())
  assert not problems, "\n".join(problems)


def test_the_third_party_checker_catches_missing_and_unmapped_imports(tmp_path):
  targets = load_targets()
  for name in ("experiment", "train"):
    targets[name]["deps"].remove("@pip//optax")
  script = tmp_path / "script.py"
  script.write_text("import yaml\ntry:\n  import xmanager\nexcept ImportError:\n  pass\n")
  targets["extra"] = dict(kind="py_library", srcs=[str(script)], deps=[])
  assert sorted(third_party_problems(targets)) == sorted([
      f"extra ({script}) imports yaml, which IMPORT_TO_REQUIREMENT does not map to a "
      "distribution",  # and xmanager, optional here, is not reported
      "experiment (temporal_icl/core/experiment.py) imports optax but no "
      "requirement(\"optax\") is among its deps",
      "train (temporal_icl/training/train.py) imports optax but no requirement(\"optax\") is "
      "among its deps"])


def test_the_import_map_agrees_with_the_installed_metadata():
  installed = importlib.metadata.packages_distributions()
  for top, requirement in IMPORT_TO_REQUIREMENT.items():
    if top in installed:  # xmanager is an optional extra
      assert canonical(requirement) in {canonical(d) for d in installed[top]}, top


# --- The lock and setup.py's pins --------------------------------------------------

def parse_pins(text):
  """({canonical name: version}, problems) of a lock-style file: `name==version` lines."""
  pins, problems = {}, []
  for line in text.splitlines():
    line = line.split("#")[0].strip()
    if not line:
      continue
    match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;=<>!~]+)", line)
    if match is None:
      problems.append(f"'{line}' is not an exact pin name==version")
      continue
    pins[canonical(match.group(1))] = match.group(2)
  return pins, problems


def lock_problems(targets, lock_text):
  """Lines that are not exact pins, and requirement()s of BUILD that the lock lacks."""
  pins, problems = parse_pins(lock_text)
  users = {}
  for name, t in targets.items():
    for dep in t["deps"]:
      if dep.startswith("@pip//"):
        users.setdefault(dep[len("@pip//"):], []).append(name)
  for requirement, names in sorted(users.items()):
    if requirement not in pins:
      problems.append(f"requirement(\"{requirement}\") (used by {', '.join(sorted(names))})"
                      f" is not in {LOCK}")
  return problems


def setup_pins(setup_text):
  """setup.py's INSTALL_REQUIRES and EXTRAS_REQUIRE, read without running it."""
  spec = importlib.util.spec_from_file_location(
      "requirements_tool", os.path.join(REPO, "tools", "requirements.py"))
  tool = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(tool)
  return tool.setup_pins(setup_text)


def pin_problems(requirements, pins_text, filename):
  """Each of setup.py's `requirements` must be pinned in `pins_text` inside its range."""
  pins, problems = parse_pins(pins_text)
  for line in requirements:
    req = Requirement(line)
    version = pins.get(canonical(req.name))
    if version is None:
      problems.append(f"{filename} lacks {req.name} (setup.py: {req})")
    elif not req.specifier.contains(version, prereleases=True):
      problems.append(f"{filename} pins {req.name}=={version}, outside setup.py's {req}")
  return problems


def test_every_requirement_is_pinned_in_the_lock():
  problems = lock_problems(load_targets(), read(LOCK))
  assert not problems, "\n".join(problems)


def test_lock_and_requirements_txt_agree_with_setup_py():
  install, extras = setup_pins(read("setup.py"))
  lock, runtime = read(LOCK), read(RUNTIME_REQUIREMENTS)
  problems = (pin_problems(install + extras["test"], lock, LOCK)
              + pin_problems(install, runtime, RUNTIME_REQUIREMENTS))
  # requirements.txt is the runtime part of the lock, at the same versions.
  runtime_pins, lock_pins = parse_pins(runtime)[0], parse_pins(lock)[0]
  problems += [f"{RUNTIME_REQUIREMENTS} pins {n}=={v}, {LOCK} {lock_pins.get(n)}"
               for n, v in runtime_pins.items() if lock_pins.get(n) != v]
  assert not problems, "\n".join(problems)


def test_the_lock_checkers_catch_missing_loose_and_out_of_range_pins():
  lock = read(LOCK)
  broken = (lock.replace("optax==", "optax-gone==").replace("numpy==", "numpy>=")
            .replace("jax==0.10.2\n", "jax==0.9.0\n"))
  assert broken != lock
  install, _ = setup_pins(read("setup.py"))
  problems = lock_problems(load_targets(), broken) + pin_problems(install, broken, LOCK)
  numpy_line = next(l for l in broken.splitlines() if l.startswith("numpy>="))
  users = sorted({n for n, t in load_targets().items() if "@pip//optax" in t["deps"]})
  assert sorted(set(problems)) == sorted({
      f"'{numpy_line}' is not an exact pin name==version",
      "requirement(\"numpy\") (used by " + ", ".join(sorted(
          n for n, t in load_targets().items() if "@pip//numpy" in t["deps"]))
      + f") is not in {LOCK}",
      f"requirement(\"optax\") (used by {', '.join(users)}) is not in {LOCK}",
      f"{LOCK} lacks numpy (setup.py: numpy<3,>=2.0)",
      f"{LOCK} lacks optax (setup.py: optax<0.3,>=0.2.8)",
      f"{LOCK} pins jax==0.9.0, outside setup.py's jax<0.11,>=0.10.2"})


def test_the_lock_is_the_installed_tested_set():
  """Only where the locked set is installed (this venv; not under Bazel, where only a
  test's deps are importable): regenerating must change nothing."""
  pins, _ = parse_pins(read(LOCK))
  try:
    for name in pins:
      importlib.metadata.version(name)
  except importlib.metadata.PackageNotFoundError:
    pytest.skip("the locked distributions are not all installed here")
  result = subprocess.run([sys.executable, os.path.join("tools", "requirements.py"),
                           "--check"], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
  assert result.returncode == 0, result.stdout + result.stderr


# --- Every py_test runs pytest on its own file ------------------------------------

def runner_problems(targets, runner_args=pytest_main.pytest_args):
  """Lines for each py_test whose main is not the runner, or whose runner would not
  run pytest on the target's own file."""
  problems = []
  for name, t in sorted(targets.items()):
    if t["kind"] != "py_test":
      continue
    own = own_test_file(name)
    if t.get("main") != RUNNER:
      problems.append(f"{name}: main is {t.get('main')}, not the runner {RUNNER}")
    if sorted(t["srcs"]) != sorted([RUNNER, own]):
      problems.append(f"{name}: srcs {t['srcs']} are not [{RUNNER}, {own}]")
    args = t.get("args", [])
    if args != [f"$(rootpath {own})"]:
      problems.append(f"{name}: args {args} do not pass its own file, "
                      f"[\"$(rootpath {own})\"]")
      continue
    expanded = [re.sub(r"\$\(rootpath (\S+)\)", r"\1", a) for a in args]
    files = [a for a in runner_args(expanded, environ={}) if a.endswith(".py")]
    if files != [own]:
      problems.append(f"{name}: the runner would run pytest on {files}, not [{own}]")
  return problems


def test_every_py_test_runs_pytest_on_its_own_file():
  problems = runner_problems(load_targets())
  assert not problems, "\n".join(problems)


def test_the_runner_checker_catches_a_file_as_main_and_a_wrong_file():
  text = read("BUILD")
  # The old form: the test file as its own main (pytest files have none).
  broken = text.replace("main = RUNNER,", "main = \"temporal_icl/tests/%s.py\" % name,")
  assert broken != text
  targets = load_targets(broken)
  targets["heads_test"]["main"] = RUNNER
  targets["heads_test"]["args"] = ["$(rootpath temporal_icl/tests/data_test.py)"]
  problems = runner_problems(targets)
  assert "data_test: main is temporal_icl/tests/data_test.py, not the runner " + RUNNER \
      in problems
  assert ("heads_test: args ['$(rootpath temporal_icl/tests/data_test.py)'] do not pass "
          "its own file, [\"$(rootpath temporal_icl/tests/heads_test.py)\"]") in problems
  # A runner that dropped its argument would be caught too.
  assert "energy_test: the runner would run pytest on [], not " \
      "[temporal_icl/tests/energy_test.py]" in runner_problems(
          load_targets(), runner_args=lambda argv, environ: ["-q"])


def test_the_runner_passes_the_file_to_pytest_and_exits_with_its_status(monkeypatch):
  calls = []
  monkeypatch.setattr(pytest, "main", lambda args: calls.append(args) or 3)
  monkeypatch.setenv("XML_OUTPUT_FILE", "/tmp/out.xml")
  monkeypatch.setenv("TEST_TMPDIR", "/tmp/bazel")
  monkeypatch.setenv("TESTBRIDGE_TEST_ONLY", "test_x")
  assert pytest_main.main(["temporal_icl/tests/data_test.py"]) == 3
  assert calls == [["temporal_icl/tests/data_test.py", "-o", "addopts=", "-o",
                    "cache_dir=/tmp/bazel/pytest_cache", "--junitxml=/tmp/out.xml",
                    "-k", "test_x"]]
  with pytest.raises(SystemExit, match="usage"):
    pytest_main.main([])


def test_the_runner_fails_a_failing_or_empty_test_file(tmp_path):
  """Real pytest runs: pass -> 0, failure -> 1, nothing collected -> 5 (a failure)."""
  cases = {"pass_test.py": ("def test_ok():\n  assert True\n", 0),
           "fail_test.py": ("def test_bad():\n  assert False\n", 1),
           "empty_test.py": ("X = 1\n", 5)}
  for filename, (source, status) in cases.items():
    (tmp_path / filename).write_text(source)
    result = subprocess.run([sys.executable, os.path.join(REPO, RUNNER), filename],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env={k: v for k, v in os.environ.items()
                                 if k not in ("XML_OUTPUT_FILE", "TESTBRIDGE_TEST_ONLY",
                                              "TEST_TMPDIR", "PYTEST_ADDOPTS")})
    assert result.returncode == status, (filename, result.stdout[-2000:])


# --- Rules from @rules_python; MODULE.bazel's hub and lock ---------------------------

class _Extension:
  """Stand-in for a module extension proxy: records tag calls."""

  def __init__(self, label, name):
    self.label, self.name, self.tags = label, name, []

  def __getattr__(self, tag):
    return lambda **kwargs: self.tags.append((tag, kwargs))


def evaluate_module(text):
  """What a MODULE.bazel text declares: bazel_deps, extensions, use_repo calls."""
  declared = dict(bazel_deps={}, extensions=[], repos=[])

  def use_extension(label, name, **kwargs):
    extension = _Extension(label, name)
    declared["extensions"].append(extension)
    return extension

  namespace = dict(
      module=lambda **k: None,
      bazel_dep=lambda name, version=None, **k: declared["bazel_deps"].update(
          {name: version}),
      use_extension=use_extension,
      use_repo=lambda extension, *names, **k: declared["repos"].append(
          (extension, names)))
  exec(compile(text, "MODULE.bazel", "exec"), namespace)  # pylint: disable=exec-used
  return declared


def label_path(label):
  """'//:requirements_lock.txt' -> 'requirements_lock.txt'; '//a/b:c' -> 'a/b/c'."""
  package, _, name = label.lstrip("@").split("//", 1)[1].partition(":")
  return os.path.join(package, name) if package else name


def module_problems(module_text, build_text):
  """Lines for rules not loaded from @rules_python, or a pip hub that BUILD loads but
  MODULE.bazel does not build from an existing lock for the toolchain's Python."""
  declared = evaluate_module(module_text)
  targets, loads = evaluate_build(build_text)
  problems = []
  if "rules_python" not in declared["bazel_deps"]:
    problems.append("MODULE.bazel has no bazel_dep on rules_python")
  loaded = {symbol: label for label, symbols in loads for symbol in symbols}
  for kind in sorted({t["kind"] for t in targets.values()}):
    if not loaded.get(kind, "").startswith("@rules_python//"):
      problems.append(f"BUILD uses {kind} without loading it from @rules_python "
                      f"(loaded from {loaded.get(kind)})")
  hub_label = loaded.get("requirement", "")
  hub = re.match(r"@([\w.-]+)//:requirements\.bzl$", hub_label)
  if hub is None:
    return problems + [f"BUILD loads requirement from {hub_label or 'nowhere'}, not "
                       "@HUB//:requirements.bzl"]
  hub = hub.group(1)
  pythons = {kwargs.get("python_version") for e in declared["extensions"]
             if e.label.endswith(":python.bzl") for tag, kwargs in e.tags
             if tag == "toolchain"}
  pips = [e for e in declared["extensions"] if e.label.endswith(":pip.bzl")]
  parses = [(e, kwargs) for e in pips for tag, kwargs in e.tags
            if tag == "parse" and kwargs.get("hub_name") == hub]
  if not parses:
    return problems + [f"MODULE.bazel has no pip.parse(hub_name = \"{hub}\"), the hub "
                       "BUILD loads requirement from"]
  for extension, kwargs in parses:
    lock = kwargs.get("requirements_lock", "")
    if not lock.startswith("//") or not os.path.isfile(os.path.join(REPO,
                                                                    label_path(lock))):
      problems.append(f"pip.parse(hub_name = \"{hub}\") reads {lock or 'no lock'}, "
                      "which is not a file of this repository")
    if kwargs.get("python_version") not in pythons:
      problems.append(f"pip.parse(hub_name = \"{hub}\") is for Python "
                      f"{kwargs.get('python_version')}, the toolchains are "
                      f"{sorted(p for p in pythons if p)}")
    if not any(e is extension and hub in names for e, names in declared["repos"]):
      problems.append(f"MODULE.bazel does not use_repo(pip, \"{hub}\")")
  return problems


def test_module_builds_the_hub_build_loads_from_the_lock():
  problems = module_problems(read("MODULE.bazel"), read("BUILD"))
  assert not problems, "\n".join(problems)
  lock = evaluate_module(read("MODULE.bazel"))["extensions"][1].tags[0][1]
  assert label_path(lock["requirements_lock"]) == LOCK


def test_the_module_checker_catches_a_missing_lock_hub_and_rules_python_load():
  module, build = read("MODULE.bazel"), read("BUILD")
  broken_module = module.replace("//:requirements_lock.txt", "//:requirements.lock")
  assert module_problems(broken_module, build) == [
      "pip.parse(hub_name = \"pip\") reads //:requirements.lock, which is not a file of "
      "this repository"]
  assert module_problems(module.replace('python_version = "3.11",\n    requirements',
                                        'python_version = "3.12",\n    requirements'),
                         build) == [
      "pip.parse(hub_name = \"pip\") is for Python 3.12, the toolchains are ['3.11']"]
  assert module_problems(module.replace('use_repo(pip, "pip")', ""), build) == [
      "MODULE.bazel does not use_repo(pip, \"pip\")"]
  assert module_problems(module.replace('hub_name = "pip"', 'hub_name = "pypi"'),
                         build) == [
      "MODULE.bazel has no pip.parse(hub_name = \"pip\"), the hub BUILD loads "
      "requirement from"]
  broken_build = build.replace('load("@rules_python//python:py_test.bzl", "py_test")\n', "")
  assert broken_build != build
  assert module_problems(module, broken_build) == [
      "BUILD uses py_test without loading it from @rules_python (loaded from None)"]

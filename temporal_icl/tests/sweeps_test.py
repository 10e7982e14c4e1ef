"""Sweep definitions, run names, and the local launcher on a tiny two-run sweep."""

import json
import os
import shlex
import subprocess
import sys

import pytest

from temporal_icl.common import workdir as workdir_lib
from temporal_icl.launching import sweeps

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = "temporal_icl/tests/tiny_config.py"


def test_product_and_zip():
  grid = sweeps.product(M=[1, 2], gamma=[0.0, 0.1], seed=[0])
  assert len(grid) == 4 and {"M": 2, "gamma": 0.1, "seed": 0} in grid
  assert sweeps.zip_(M=[8, 64], gamma=[0, 1e-2]) == [{"M": 8, "gamma": 0},
                                                     {"M": 64, "gamma": 1e-2}]
  with pytest.raises(ValueError, match="equal length"):
    sweeps.zip_(M=[8, 64], gamma=[0])


def test_run_names_are_readable_stable_and_unique():
  assert sweeps.run_name({"seed": 0, "M": 8, "gamma": 1e-2}) == "M8-gamma0.01-seed0"
  assert sweeps.run_name({"M": 8, "gamma": 0.01, "seed": 0}) == "M8-gamma0.01-seed0"
  for path in ("configs/mala.py", "configs/resample.py", "configs/replication.py",
               "configs/laptop_replication.py", "configs/laptop_strength.py",
               "configs/laptop_constant_lr.py"):
    sweep = sweeps.load_sweep(os.path.join(REPO, path))
    names = [sweeps.run_name(o) for o in sweep]
    assert len(set(names)) == len(names), path


def test_close_values_get_distinct_names_and_exact_flags(tmp_path):
  a, b = {"gamma": 0.1234567}, {"gamma": 0.1234568}
  assert sweeps.run_name(a) != sweeps.run_name(b)
  assert sweeps.config_flags(a) == ["--config.gamma=0.1234567"]
  # A sweep that names one run twice is refused, not silently merged.
  path = tmp_path / "twice.py"
  path.write_text("def get_sweep():\n  return [{'M': 8}, {'M': 8}]\n")
  with pytest.raises(ValueError, match=r"repeats the runs \['M8'\]"):
    sweeps.load_sweep(str(path))


def test_paper_grids():
  mala = sweeps.load_sweep(os.path.join(REPO, "configs/mala.py"))
  assert len(mala) == 11 * 5 * 3
  assert sorted({o["M"] for o in mala}) == [2**i for i in range(11)]
  assert sorted({o["gamma"] for o in mala}) == [0, 1e-4, 1e-3, 1e-2, 1e-1]
  replication = sweeps.load_sweep(os.path.join(REPO, "configs/replication.py"))
  assert [(o["M"], o["gamma"]) for o in replication] == [(8, 0), (64, 0), (8, 1e-3),
                                                          (8, 1e-2)]


def test_every_sweep_point_is_a_valid_config():
  from temporal_icl.training import validation  # pylint: disable=g-import-not-at-top
  import importlib  # pylint: disable=g-import-not-at-top
  for name in ("mala", "resample", "replication", "laptop_replication", "laptop_strength",
               "laptop_constant_lr"):
    module = importlib.import_module(f"configs.{name}")
    for overrides in module.get_sweep():
      config = module.get_config()
      config.update(overrides)
      assert not validation.find_problems(config), (name, overrides)


def test_commands_pass_overrides_as_config_flags(tmp_path):
  jobs = sweeps.commands("configs/replication.py", str(tmp_path))
  assert jobs[2]["args"] == ["-m", "temporal_icl.main", "--config=configs/replication.py",
                             "--config.M=8", "--config.gamma=0.001",
                             f"--workdir={tmp_path}/M8-gamma0.001"]


def test_config_without_sweep_is_a_clear_error():
  with pytest.raises(ValueError, match="defines no get_sweep"):
    sweeps.load_sweep(os.path.join(REPO, "configs/base.py"))


def launch(*args, script="local_launch.py"):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  return subprocess.run([sys.executable, os.path.join("launch", script), *args],
                        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def test_xm_launch_dry_run_lists_the_jobs(tmp_path):
  result = launch("--config=configs/replication.py", f"--workdir_root={tmp_path}",
                  "--dry_run", script="xm_launch.py")
  assert result.returncode == 0, result.stderr[-2000:]
  lines = [l for l in result.stdout.splitlines() if "temporal_icl.main" in l]
  assert len(lines) == 4
  assert "--config.M=64" in lines[1] and f"--workdir={tmp_path}/M64-gamma0" in lines[1]
  # The local executor runs this venv's interpreter on this machine: host paths.
  assert lines[1].split()[:4] == [sys.executable, "-m", "temporal_icl.main",
                                  f"--config={REPO}/configs/replication.py"]


def xm_launch_from(directory, *args):
  """xm_launch.py run from `directory` (not the checkout), as a user elsewhere would."""
  return subprocess.run([sys.executable, os.path.join(REPO, "launch", "xm_launch.py"),
                         *args], cwd=directory, env=dict(os.environ, JAX_PLATFORMS="cpu"),
                        capture_output=True, text=True, timeout=300)


def test_xm_launch_vertex_dry_run_shows_the_container_jobs(tmp_path):
  config = os.path.join(REPO, "configs", "replication.py")  # a host-absolute path
  result = xm_launch_from(tmp_path, f"--config={config}", "--executor=vertex",
                          "--workdir_root=gs://bucket/runs/", "--dry_run")
  assert result.returncode == 0, result.stderr[-2000:]
  out = result.stdout.splitlines()
  assert ("  package: xm.python_container(path=<new temporary directory>/temporal-icl, "
          "base_image='python:3.11', entrypoint=xm.ModuleName('temporal_icl.main'))"
          in out)
  assert any("requirements.txt" in l and "pip-installs" in l for l in out)
  assert "  workdirs: /gcs/bucket/runs/<run> (Vertex's mount of gs://bucket/runs/<run>)" \
      in out
  jobs = {l.split(":", 1)[0].split()[1]: shlex.split(l.split(": ", 1)[1])
          for l in out if l.startswith("  job ")}
  # Exactly the arguments of the sweep's commands, the module being the entrypoint,
  # with the config relative to the packaged repository and workdirs on the bucket.
  expected = sweeps.commands(config, "/gcs/bucket/runs",
                             config_arg="configs/replication.py")
  assert jobs == {j["name"]: j["args"][2:] for j in expected}
  assert jobs["M64-gamma0"] == ["--config=configs/replication.py", "--config.M=64",
                                "--config.gamma=0", "--workdir=/gcs/bucket/runs/M64-gamma0"]
  host = [a for args in jobs.values() for a in args
          if REPO in a or str(tmp_path) in a or "gs://" in a]
  assert not host, host


def test_xm_launch_vertex_refuses_paths_the_container_lacks(tmp_path):
  config = os.path.join(REPO, "configs", "replication.py")
  local_root = xm_launch_from(tmp_path, f"--config={config}", "--executor=vertex",
                              f"--workdir_root={tmp_path}/runs", "--dry_run")
  assert local_root.returncode == 2
  assert local_root.stderr.strip() == (
      f"error: --workdir_root={tmp_path}/runs: with --executor=vertex the runs must be "
      "written to Cloud Storage, gs://BUCKET/PATH or /gcs/BUCKET/PATH (a path in the "
      "container would vanish with it).")
  outside = tmp_path / "mine.py"
  outside.write_text("def get_sweep():\n  return [{'M': 8}]\n")
  unpackaged = xm_launch_from(tmp_path, f"--config={outside}", "--executor=vertex",
                              "--workdir_root=gs://bucket/runs", "--dry_run")
  assert unpackaged.returncode == 2
  assert "is not in the packaged directories configs/ temporal_icl/" in unpackaged.stderr


def test_xm_launch_vertex_refuses_arguments_its_entrypoint_would_mangle(tmp_path):
  # XManager's Vertex entrypoint passes the arguments through an unquoted $@ and
  # `tr -d '[],'`; a sweep value with a comma or a space would reach the job changed.
  (tmp_path / "configs").mkdir()
  (tmp_path / "configs" / "commas.py").write_text(
      "def get_sweep():\n  return [{'model.sizes': '8,16'}]\n")
  (tmp_path / "requirements.txt").write_text("")
  code = ("import sys; sys.path.insert(0, sys.argv[1]); import xm_launch; "
          "xm_launch.REPO = sys.argv[2]; "
          "xm_launch.vertex_jobs(sys.argv[2] + '/configs/commas.py', 'gs://b/r')")
  result = subprocess.run([sys.executable, "-c", code, os.path.join(REPO, "launch"),
                           str(tmp_path)], capture_output=True, text=True, timeout=120)
  assert result.returncode == 1
  assert ("ValueError: run model.sizes8,16: the arguments ['--config.model.sizes=8,16', "
          "'--workdir=/gcs/b/r/model.sizes8,16'] hold whitespace, quotes, commas or "
          "brackets") in result.stderr


def xm_launch_json(code, cwd):
  """json.loads of what `code` prints, run with xm_launch imported as xm_launch (in a
  subprocess: its flags would clash with local_launch's in this one)."""
  prelude = ("import json, sys; sys.path.insert(0, sys.argv[1]); import xm_launch; "
             "from temporal_icl.launching import sweeps; ")
  result = subprocess.run([sys.executable, "-c", prelude + code, os.path.join(REPO, "launch")],
                          cwd=cwd, capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  return json.loads(result.stdout)


def test_xm_work_units_are_one_per_run_group_with_their_args_and_resources(tmp_path):
  """xm_launch's plan, without XManager: the jobs that the slow test below runs
  where XManager is installed, and those that --executor=vertex submits."""
  tiny = os.path.join(REPO, TINY)
  local = xm_launch_json(
      f"print(json.dumps([xm_launch.work_units(sweeps.commands({tiny!r}, '/runs', "
      f"runs_per_process=n), 'local') for n in (1, 2)]))", tmp_path)
  binary_ = {"kind": "binary", "path": sys.executable}  # this venv's interpreter
  solo = ["-m", "temporal_icl.main", f"--config={tiny}"]
  assert local[0] == [binary_, [
      {"name": "gamma0-seed42", "runs": ["gamma0-seed42"], "requirements": {},
       "args": solo + ["--config.gamma=0", "--config.seed=42", "--workdir=/runs/gamma0-seed42"]},
      {"name": "gamma0.05-seed42", "runs": ["gamma0.05-seed42"], "requirements": {},
       "args": solo + ["--config.gamma=0.05", "--config.seed=42",
                       "--workdir=/runs/gamma0.05-seed42"]}]]
  # Two runs per process: one work unit trains both as a group.
  assert local[1] == [binary_, [
      {"name": "gamma0-seed42+1", "runs": ["gamma0-seed42", "gamma0.05-seed42"],
       "requirements": {}, "args": solo + ["--workdir=/runs", "--group=gamma0-seed42",
                                           "--group=gamma0.05-seed42"]}]]

  config = os.path.join(REPO, "configs", "replication.py")
  vertex = xm_launch_json(
      f"print(json.dumps(xm_launch.work_units(xm_launch.vertex_jobs({config!r}, "
      "'gs://b/r', 2), 'vertex')))", tmp_path)
  # replication.py: (M, γ) = (8, 0), (64, 0), (8, 1e-3), (8, 1e-2), grouped in order.
  container = ["--config=configs/replication.py", "--workdir=/gcs/b/r"]
  assert vertex == [
      {"kind": "python_container", "base_image": "python:3.11",
       "entrypoint": "temporal_icl.main"},
      [{"name": "M8-gamma0+1", "runs": ["M8-gamma0", "M64-gamma0"], "requirements": {"cpu": 8},
        "args": container + ["--group=M8-gamma0", "--group=M64-gamma0"]},
       {"name": "M8-gamma0.001+1", "runs": ["M8-gamma0.001", "M8-gamma0.01"],
        "requirements": {"cpu": 8},
        "args": container + ["--group=M8-gamma0.001", "--group=M8-gamma0.01"]}]]


# A stand-in for the parts of XManager that xm_launch.launch calls: each call is
# recorded as {"kind": name, its keyword arguments...}, and the experiment writes
# what it was given to $FAKE_XM_RECORD when it closes.
FAKE_XM = {
    "xmanager/__init__.py": "",
    "xmanager/fake.py": """
import os

class Record:
  def __init__(self, kind, **fields):
    self.kind, self.fields = kind, fields

def as_json(value):
  if isinstance(value, Record):
    return {"kind": value.kind, **{k: as_json(v) for k, v in value.fields.items()}}
  if isinstance(value, (list, tuple)):
    return [as_json(v) for v in value]
  return value

def files_under(path):
  return sorted(os.path.relpath(os.path.join(d, f), path)
                for d, _, names in os.walk(path) for f in names)
""",
    "xmanager/xm.py": """
from xmanager.fake import Record, files_under

def binary(**kwargs):
  return Record("binary", **kwargs)

def python_container(**kwargs):
  # What the directory holds when it is packaged (it is a temporary one).
  return Record("python_container", files=files_under(kwargs["path"]), **kwargs)

def ModuleName(name):
  return Record("ModuleName", name=name)

def Job(**kwargs):
  return Record("Job", **kwargs)

def JobRequirements(**kwargs):
  return Record("JobRequirements", **kwargs)
""",
    "xmanager/xm_local.py": """
import json, os
from xmanager.fake import Record, as_json

class Local(Record):
  def __init__(self, **kwargs):
    super().__init__("Local", **kwargs)

  @staticmethod
  def Spec():
    return Record("Local.Spec")

class Vertex(Record):
  def __init__(self, **kwargs):
    super().__init__("Vertex", **kwargs)

  @staticmethod
  def Spec():
    return Record("Vertex.Spec")

class Experiment:
  experiment_id = 7

  def __init__(self, title):
    self.record = {"title": title, "packaged": [], "jobs": []}

  def package(self, packageables):
    self.record["packaged"].append(as_json(packageables))
    return [Record("executable", number=i) for i in range(len(packageables))]

  def add(self, job):
    self.record["jobs"].append(as_json(job))

  def __enter__(self):
    return self

  def __exit__(self, *exc_info):
    with open(os.environ["FAKE_XM_RECORD"], "w") as f:
      json.dump(self.record, f)

def create_experiment(experiment_title):
  return Experiment(experiment_title)
""",
}


def launch_with_fake_xmanager(tmp_path, *args):
  """(xm_launch's stdout, what it gave the fake XManager) for a launch with `args`."""
  fake = tmp_path / "fake_xmanager"
  for path, text in FAKE_XM.items():
    (fake / path).parent.mkdir(parents=True, exist_ok=True)
    (fake / path).write_text(text)
  record = tmp_path / "record.json"
  env = dict(os.environ, PYTHONPATH=str(fake), FAKE_XM_RECORD=str(record))
  result = subprocess.run([sys.executable, os.path.join(REPO, "launch", "xm_launch.py"),
                           *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  return result.stdout, json.loads(record.read_text())


def test_xm_launch_gives_xmanager_one_job_per_work_unit(tmp_path):
  tiny = os.path.join(REPO, TINY)
  out, record = launch_with_fake_xmanager(
      tmp_path, f"--config={tiny}", f"--workdir_root={tmp_path}/runs", "--runs_per_process=2")
  assert out.strip() == "Experiment 7: 1 jobs."
  # One package, this interpreter run locally; one job per group, with its args.
  assert record == {"title": "tiny_config", "packaged": [[
      {"kind": "binary", "executor_spec": {"kind": "Local.Spec"}, "path": sys.executable}]],
      "jobs": [{"kind": "Job", "executable": {"kind": "executable", "number": 0},
                "executor": {"kind": "Local"},
                "args": ["-m", "temporal_icl.main", f"--config={tiny}",
                         f"--workdir={tmp_path}/runs", "--group=gamma0-seed42",
                         "--group=gamma0.05-seed42"]}]}

  config = os.path.join(REPO, "configs", "replication.py")
  out, record = launch_with_fake_xmanager(
      tmp_path, f"--config={config}", "--executor=vertex", "--workdir_root=gs://b/r",
      "--title=paper")
  assert out.strip() == "Experiment 7: 4 jobs."
  [[container]] = record["packaged"]
  files = container.pop("files")
  assert container == {"kind": "python_container", "executor_spec": {"kind": "Vertex.Spec"},
                       "path": container["path"], "base_image": "python:3.11",
                       "entrypoint": {"kind": "ModuleName", "name": "temporal_icl.main"}}
  assert os.path.basename(container["path"]) == "temporal-icl"
  assert not os.path.exists(container["path"])  # the staging directory is temporary
  for path in ("configs/replication.py", "temporal_icl/main.py", "requirements.txt",
               "setup.py"):
    assert path in files, path
  assert record["title"] == "paper"
  vertex = {"kind": "Vertex", "requirements": {"kind": "JobRequirements", "cpu": 8}}
  points = [("M8-gamma0", ["--config.M=8", "--config.gamma=0"]),
            ("M64-gamma0", ["--config.M=64", "--config.gamma=0"]),
            ("M8-gamma0.001", ["--config.M=8", "--config.gamma=0.001"]),
            ("M8-gamma0.01", ["--config.M=8", "--config.gamma=0.01"])]
  assert record["jobs"] == [
      {"kind": "Job", "executable": {"kind": "executable", "number": 0}, "executor": vertex,
       "args": ["--config=configs/replication.py", *flags, f"--workdir=/gcs/b/r/{name}"]}
      for name, flags in points]


def test_the_vertex_package_holds_the_configs_module_and_requirements(tmp_path):
  # In a subprocess: xm_launch's flags would clash with local_launch's in this one.
  code = ("import sys; sys.path.insert(0, sys.argv[1]); import xm_launch; "
          "print(xm_launch.stage(sys.argv[2]))")
  result = subprocess.run([sys.executable, "-c", code, os.path.join(REPO, "launch"),
                           str(tmp_path)], capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  package = result.stdout.strip()
  assert package == str(tmp_path / "temporal-icl")
  for path in ("configs/replication.py", "configs/model/paper.gin", "temporal_icl/main.py",
               "temporal_icl/tests/tiny_config.py", "requirements.txt", "setup.py"):
    assert os.path.isfile(os.path.join(package, path)), path
  with open(os.path.join(REPO, "requirements.txt")) as f:
    assert open(os.path.join(package, "requirements.txt")).read() == f.read()
  assert not [d for d, _, _ in os.walk(package) if d.endswith("__pycache__")]


def test_local_launcher_runs_skips_and_summarises(tmp_path):
  args = (f"--config={TINY}", f"--workdir_root={tmp_path}", "--parallel=2",
          "--report_every=5")
  first = launch(*args)
  assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
  names = ["gamma0-seed42", "gamma0.05-seed42"]
  for name in names:
    assert workdir_lib.is_finished(tmp_path / name)
    assert name in first.stdout
  assert "Phase diagram" in first.stdout and os.path.exists(tmp_path / "phase.png")
  again = launch(*args)
  assert again.returncode == 0
  assert "2 runs (0 to do," in again.stdout  # finished runs are skipped


def test_local_launcher_resolves_paths_from_any_directory_and_checks_parallel(tmp_path):
  elsewhere = tmp_path / "elsewhere"
  elsewhere.mkdir()
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  script = os.path.join(REPO, "launch", "local_launch.py")
  config = os.path.relpath(os.path.join(REPO, TINY), elsewhere)
  dry = subprocess.run([sys.executable, script, f"--config={config}", "--workdir_root=runs",
                        "--dry_run", "--runs_per_process=1"], cwd=elsewhere, env=env,
                       capture_output=True, text=True, timeout=120)
  assert dry.returncode == 0, dry.stderr[-2000:]
  assert f"--workdir={elsewhere}/runs/gamma0-seed42" in dry.stdout
  assert f"--config={os.path.join(REPO, TINY)}" in dry.stdout
  for bad in ("0", "-3"):
    result = subprocess.run([sys.executable, script, f"--config={config}",
                             "--workdir_root=runs", f"--parallel={bad}"], cwd=elsewhere,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"error: --parallel={bad} must be a number of runs "
                                      ">= 1, or -1 for one per core.")


def test_launcher_names_exit_codes_truthfully():
  sys.path.insert(0, os.path.join(REPO, "launch"))
  import local_launch  # pylint: disable=g-import-not-at-top
  assert local_launch.status_of(0) == "done"
  assert local_launch.status_of(143) == local_launch.status_of(130) == "stopped"
  assert local_launch.status_of(-15) == "stopped (while starting)"
  assert local_launch.status_of(1) == "FAILED (exit 1)"
  assert local_launch.status_of(3) == "DIVERGED"  # the binary's exit status for a diverged run


@pytest.mark.slow
def test_xm_launch_runs_the_sweep_on_the_local_executor(tmp_path):
  pytest.importorskip("xmanager", reason="the optional '.[launch]' extra")
  env_home = tmp_path / "home"  # XManager keeps its experiment database in ~
  env_home.mkdir()
  result = subprocess.run(
      [sys.executable, os.path.join("launch", "xm_launch.py"), f"--config={TINY}",
       f"--workdir_root={tmp_path}/runs"],
      cwd=REPO, env=dict(os.environ, JAX_PLATFORMS="cpu", HOME=str(env_home)),
      capture_output=True, text=True, timeout=900)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  assert "2 jobs" in result.stdout
  for name in ["gamma0-seed42", "gamma0.05-seed42"]:
    assert workdir_lib.is_finished(tmp_path / "runs" / name)

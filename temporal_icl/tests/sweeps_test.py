"""Sweep definitions, run names, and the local launcher on a tiny two-run sweep."""

import os
import shlex
import subprocess
import sys

import pytest

from temporal_icl import sweeps
from temporal_icl import workdir as workdir_lib

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
  from temporal_icl import validation  # pylint: disable=g-import-not-at-top
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
  names = ["gamma0-seed0", "gamma0.2-seed0"]
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
  assert f"--workdir={elsewhere}/runs/gamma0-seed0" in dry.stdout
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
  for name in ["gamma0-seed0", "gamma0.2-seed0"]:
    assert workdir_lib.is_finished(tmp_path / "runs" / name)

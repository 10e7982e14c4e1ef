r"""Launches a config's sweep as an XManager experiment.

  python launch/xm_launch.py --config=configs/mala.py --workdir_root=/data/runs/mala \
      [--executor=local] [--dry_run]
  python launch/xm_launch.py --config=configs/mala.py --executor=vertex \
      --workdir_root=gs://BUCKET/runs/mala [--dry_run]

One job per sweep point (the config's get_sweep()): the `temporal_icl.main`
binary with `--config`, `--config.X=` overrides and `--workdir`; with
`--runs_per_process=N > 1`, one job per run group of up to N compatible points,
`--config`, `--workdir=<root>` and `--group=<their names>` (README "Run groups";
on an accelerator, groups of many runs keep it busy).

`--executor=local` runs the jobs on this machine with no Docker: `xm.binary`
packages this venv's interpreter and each job passes `-m temporal_icl.main …`
with host paths.

`--executor=vertex` packages a copy of the repository's configs/, temporal_icl/,
requirements.txt and setup.py as an `xm.python_container` (image python:3.11,
which pip-installs requirements.txt, the pinned runtime set; the entrypoint is
`python -m temporal_icl.main` in the copy's directory).  The jobs therefore get
the config as a path relative to that directory (configs/mala.py) and their
workdirs on Cloud Storage: `--workdir_root` must be gs://BUCKET/PATH (or
/gcs/BUCKET/PATH), which the jobs write through Vertex AI's Cloud Storage FUSE
mount /gcs/BUCKET/PATH, because the trainer writes with plain file I/O.  It
needs a GCP project, gcloud credentials and Docker (see XManager's README), and
has never been run from this repository.

`--dry_run` prints what would be packaged and each job's arguments exactly as
the job receives them, without importing XManager.

`work_units` makes that plan (the executable, and per job its name, runs,
arguments and resources) with no XManager, so that it is tested without it;
`launch` only translates the plan into XManager calls.

XManager is an optional extra: `pip install -e '.[launch]'` (pinned in setup.py;
see the README for how long it takes).
"""

import os
import re
import shlex
import shutil
import sys
import tempfile

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from temporal_icl.launching import sweeps  # pylint: disable=g-import-not-at-top

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENTRYPOINT = "temporal_icl.main"
# What the Vertex image holds, relative to REPO (directories end with '/').
PACKAGED = ("configs/", "temporal_icl/", "requirements.txt", "setup.py")
PACKAGE_NAME = "temporal-icl"  # the copy's directory: the image's working directory
BASE_IMAGE = "python:3.11"  # the Python that requirements.txt was generated with
# XManager's Vertex entrypoint scripts pass the arguments through an unquoted $@ (word
# splitting, globbing) and `tr -d '[],'`: such characters would split, expand or vanish.
_UNSAFE = re.compile(r"[\s\[\],*?'\"\\]")

_CONFIG = flags.DEFINE_string("config", None, "Config file with a get_sweep().")
_ROOT = flags.DEFINE_string(
    "workdir_root", None, "Directory for the runs' workdirs; for --executor=vertex "
    "gs://BUCKET/PATH or /gcs/BUCKET/PATH.")
_EXECUTOR = flags.DEFINE_enum("executor", "local", ["local", "vertex"], "Where jobs run.")
_TITLE = flags.DEFINE_string("title", None, "Experiment title (default: config name).")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "Print the jobs; launch nothing.")
_RUNS_PER_PROCESS = flags.DEFINE_integer(
    "runs_per_process", 1, "Sweep points per job, trained as one run group.")


def import_xmanager():
  try:
    from xmanager import xm  # pylint: disable=g-import-not-at-top
    from xmanager import xm_local  # pylint: disable=g-import-not-at-top
  except ImportError:
    print("error: XManager is not installed. It is an optional extra:\n"
          "  .venv/bin/pip install -e '.[launch]'\n"
          "or run the same sweep without it:\n"
          f"  python launch/local_launch.py --config={_CONFIG.value} "
          f"--workdir_root={_ROOT.value}", file=sys.stderr)
    sys.exit(2)
  return xm, xm_local


def container_config(config: str) -> str:
  """The --config value inside the image: the file's path relative to REPO."""
  path, colon, rest = config.partition(":")
  relative = os.path.relpath(os.path.abspath(path), REPO)
  if not any(relative.startswith(d) for d in PACKAGED if d.endswith("/")):
    raise ValueError(f"--config={config} is not in the packaged directories "
                     f"{' '.join(d for d in PACKAGED if d.endswith('/'))} of {REPO}; "
                     "the Vertex image holds only those.")
  return relative + colon + rest


def container_workdir_root(root: str) -> str:
  """gs://BUCKET/PATH -> /gcs/BUCKET/PATH, Vertex's mount of the bucket."""
  if root.startswith("gs://") and len(root) > len("gs://"):
    return "/gcs/" + root[len("gs://"):].rstrip("/")
  if root.startswith("/gcs/") and len(root) > len("/gcs/"):
    return root.rstrip("/")
  raise ValueError(f"--workdir_root={root}: with --executor=vertex the runs must be "
                   "written to Cloud Storage, gs://BUCKET/PATH or /gcs/BUCKET/PATH "
                   "(a path in the container would vanish with it).")


def vertex_jobs(config: str, workdir_root: str, runs_per_process: int = 1):
  """The sweep's jobs with the arguments a Vertex job gets (the module is the
  entrypoint, so args start at --config)."""
  if not os.path.exists(os.path.join(REPO, "requirements.txt")):
    raise ValueError("requirements.txt is missing; the image installs it. Generate it "
                     "with `.venv/bin/python tools/requirements.py`.")
  jobs = sweeps.commands(os.path.abspath(config), container_workdir_root(workdir_root),
                         config_arg=container_config(config),
                         runs_per_process=runs_per_process)
  for job in jobs:
    assert job["args"][:2] == ["-m", ENTRYPOINT], job["args"]
    job["args"] = job["args"][2:]
    unsafe = [a for a in job["args"] if _UNSAFE.search(a)]
    if unsafe:
      raise ValueError(f"run {job['name']}: the arguments {unsafe} hold whitespace, "
                       "quotes, commas or brackets, which XManager's Vertex entrypoint "
                       "would split or strip.")
  return jobs


def stage(directory: str) -> str:
  """Copies PACKAGED from REPO into directory/PACKAGE_NAME; returns that path."""
  target = os.path.join(directory, PACKAGE_NAME)
  for entry in PACKAGED:
    source = os.path.join(REPO, entry)
    if entry.endswith("/"):
      shutil.copytree(source, os.path.join(target, entry),
                      ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    else:
      os.makedirs(target, exist_ok=True)
      shutil.copy(source, os.path.join(target, entry))
  return target


VERTEX_CPUS = 8  # what each Vertex job asks for


def work_units(jobs, executor: str):
  """What the experiment holds, one work unit per job (per run group when
  runs_per_process > 1); pure, so that it is tested without XManager.

  Returns:
    (the one executable every unit runs, as a dict: kind "binary" (path: this
    interpreter) for executor local, or kind "python_container" (base_image,
    entrypoint; its path is the staged copy, known at launch) for vertex;
    the units: name, runs (the names of the sweep points it trains), args (as the
    executable receives them) and requirements (the job's resources, {} for none)).
  """
  if executor == "local":
    executable = {"kind": "binary", "path": sys.executable}
    requirements = {}
  elif executor == "vertex":
    executable = {"kind": "python_container", "base_image": BASE_IMAGE,
                  "entrypoint": ENTRYPOINT}
    requirements = {"cpu": VERTEX_CPUS}
  else:
    raise ValueError(f"unknown executor {executor!r}; expected local or vertex.")
  units = [{"name": job["name"], "runs": [run["name"] for run in job["runs"]],
            "args": list(job["args"]), "requirements": dict(requirements)}
           for job in jobs]
  return executable, units


def launch(jobs, title: str, executor: str):
  """Adds work_units(jobs, executor) to a new XManager experiment: the only code
  here that touches XManager, a one-to-one translation of the plan."""
  executable, units = work_units(jobs, executor)
  xm, xm_local = import_xmanager()
  with tempfile.TemporaryDirectory() as staging, \
      xm_local.create_experiment(experiment_title=title) as experiment:
    local = executable["kind"] == "binary"
    if local:
      packageable = xm.binary(executor_spec=xm_local.Local.Spec(), path=executable["path"])
    else:
      packageable = xm.python_container(
          executor_spec=xm_local.Vertex.Spec(), path=stage(staging),
          base_image=executable["base_image"],
          entrypoint=xm.ModuleName(executable["entrypoint"]))
    [packaged] = experiment.package([packageable])
    for unit in units:
      executor_of_unit = (xm_local.Local() if local else xm_local.Vertex(
          requirements=xm.JobRequirements(**unit["requirements"])))
      experiment.add(xm.Job(executable=packaged, executor=executor_of_unit,
                            args=unit["args"]))
    print(f"Experiment {experiment.experiment_id}: {len(units)} jobs.")


def print_plan(jobs, title: str, executor: str, workdir_root: str):
  executable, units = work_units(jobs, executor)
  print(f"experiment {title!r}, executor {executor}, {len(units)} jobs:")
  if executable["kind"] == "binary":
    for unit in units:
      print("  " + shlex.join([executable["path"], *unit["args"]]))
    return
  print(f"  package: xm.python_container(path=<new temporary directory>/{PACKAGE_NAME}, "
        f"base_image={executable['base_image']!r}, "
        f"entrypoint=xm.ModuleName({executable['entrypoint']!r}))")
  print(f"    {PACKAGE_NAME}/ holds {' '.join(PACKAGED)} copied from {REPO}; the image "
        f"pip-installs {PACKAGE_NAME}/requirements.txt and runs each job in "
        f"/{PACKAGE_NAME} as: python -m {ENTRYPOINT} ARGS")
  seen_as = container_workdir_root(workdir_root)
  print(f"  workdirs: {seen_as}/<run>" + (
      f" (Vertex's mount of {workdir_root.rstrip('/')}/<run>)"
      if workdir_root.startswith("gs://") else ""))
  for unit in units:
    print(f"  job {unit['name']}: {shlex.join(unit['args'])}")


def main(argv):
  del argv
  if not (_CONFIG.value and _ROOT.value):
    raise app.UsageError("--config and --workdir_root are required.")
  try:
    if _RUNS_PER_PROCESS.value < 1:
      raise ValueError(f"--runs_per_process={_RUNS_PER_PROCESS.value} must be >= 1.")
    if _EXECUTOR.value == "vertex":
      jobs = vertex_jobs(_CONFIG.value, _ROOT.value, _RUNS_PER_PROCESS.value)
    else:
      jobs = sweeps.commands(os.path.abspath(_CONFIG.value), os.path.abspath(_ROOT.value),
                             runs_per_process=_RUNS_PER_PROCESS.value)
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  title = _TITLE.value or os.path.splitext(os.path.basename(_CONFIG.value))[0]
  if _DRY_RUN.value:
    print_plan(jobs, title, _EXECUTOR.value, _ROOT.value)
    return
  launch(jobs, title, _EXECUTOR.value)


if __name__ == "__main__":
  app.run(main)

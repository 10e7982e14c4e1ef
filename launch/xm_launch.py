r"""Launches a config's sweep as an XManager experiment.

  python launch/xm_launch.py --config=configs/mala.py --workdir_root=/data/runs/mala \
      [--executor=local|vertex] [--dry_run]

One job per sweep point (the config's get_sweep()): the `temporal_icl.main`
binary with `--config`, `--config.X=` overrides and `--workdir`.  The local
executor runs it on this machine with no Docker: `xm.binary` packages this
venv's interpreter and each job passes `-m temporal_icl.main …`.  `--executor=vertex` packages the
repository as a Python container for Vertex AI; it needs a GCP project, gcloud
credentials and Docker (see XManager's README), and is never needed here.
`--dry_run` prints the jobs without importing XManager.

XManager is an optional extra: `pip install -e '.[launch]'` (pinned in setup.py;
see the README for how long it takes).
"""

import os
import shlex
import sys

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from temporal_icl import sweeps  # pylint: disable=g-import-not-at-top

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_CONFIG = flags.DEFINE_string("config", None, "Config file with a get_sweep().")
_ROOT = flags.DEFINE_string("workdir_root", None, "Directory for the runs' workdirs.")
_EXECUTOR = flags.DEFINE_enum("executor", "local", ["local", "vertex"], "Where jobs run.")
_TITLE = flags.DEFINE_string("title", None, "Experiment title (default: config name).")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "Print the jobs; launch nothing.")


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


def launch(jobs, title: str, executor: str):
  xm, xm_local = import_xmanager()
  with xm_local.create_experiment(experiment_title=title) as experiment:
    if executor == "local":
      # The interpreter of this venv is the binary; each job adds its arguments.
      [executable] = experiment.package([xm.binary(
          executor_spec=xm_local.Local.Spec(), path=sys.executable)])
      for job in jobs:
        experiment.add(xm.Job(executable=executable, executor=xm_local.Local(),
                              args=job["args"]))
    else:
      [executable] = experiment.package([xm.python_container(
          executor_spec=xm_local.Vertex.Spec(), path=REPO,
          entrypoint=xm.ModuleName("temporal_icl.main"))])
      for job in jobs:
        experiment.add(xm.Job(
            executable=executable,
            executor=xm_local.Vertex(requirements=xm.JobRequirements(cpu=8)),
            args=job["args"][2:]))  # the module is the entrypoint
    print(f"Experiment {experiment.experiment_id}: {len(jobs)} jobs.")


def main(argv):
  del argv
  if not (_CONFIG.value and _ROOT.value):
    raise app.UsageError("--config and --workdir_root are required.")
  try:
    jobs = sweeps.commands(os.path.abspath(_CONFIG.value), os.path.abspath(_ROOT.value))
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  title = _TITLE.value or os.path.splitext(os.path.basename(_CONFIG.value))[0]
  if _DRY_RUN.value:
    print(f"experiment {title!r}, executor {_EXECUTOR.value}, {len(jobs)} jobs:")
    for job in jobs:
      print("  " + shlex.join(["python", *job["args"]]))
    return
  launch(jobs, title, _EXECUTOR.value)


if __name__ == "__main__":
  app.run(main)

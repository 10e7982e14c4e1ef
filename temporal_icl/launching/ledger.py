"""The ledger of a long sweep: the small files of its finished runs, kept in git.

A sweep that outlives a working session keeps its checkpoints in a scratch
directory (`--workdir_root`), which a new machine does not have.  What must never be
lost is every finished run's record, so the launcher copies it, as each run
finishes, to a ledger directory inside the repository (`--ledger`), to be committed:

  <ledger>/<run name>/config.json, operative_config.gin, FINISHED or DIVERGED,
                      provenance.json, events.out.tfevents.*   (never checkpoints)

A later session, on any machine, runs the same launcher command: a run whose ledger
entry holds config.json and FINISHED (or DIVERGED) is skipped; others train again.
The analysis tools read a ledger as they read a sweep directory
(`python -m temporal_icl.analysis.phase --sweep_dir=<ledger>`).

Each launch of a run appends a record to its provenance.json: the commit, jax and
jaxlib versions, the CPU and its widest vector extension (float rounding differs
between AVX2 and AVX-512 machines, so reruns are bit-equal only on the same kind),
the cores it was pinned to and the members of its run group (whose size and M values
can change rounding too).  `<ledger>/sessions.json` keeps each launcher session's
start, last update and finished-run count, for the sweep's wall time.
"""

import datetime
import glob
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
from typing import Any, Dict, List, Optional, Sequence

from temporal_icl.common import workdir as workdir_lib

PROVENANCE_FILE = "provenance.json"
SESSIONS_FILE = "sessions.json"
_KEPT = (workdir_lib.CONFIG_FILE, workdir_lib.OPERATIVE_GIN_FILE, workdir_lib.FINISHED_FILE,
         workdir_lib.DIVERGED_FILE, PROVENANCE_FILE)
_EVENTS = "events.out.tfevents.*"


def now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def commit_of(repo: str) -> str:
  """The commit checked out at `repo`, with '-dirty' if tracked files differ from it,
  or 'unknown' outside a git checkout."""
  try:
    head = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain",
                            "--untracked-files=no"], capture_output=True, text=True,
                           check=True).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    return "unknown"
  return head + ("-dirty" if dirty else "")


def cpu_kind() -> Dict[str, str]:
  """{'model': 'AMD EPYC', 'vector_extensions': 'AVX-512' | 'AVX2' | 'other'} (Linux)."""
  model, flags = platform.processor() or "unknown", set()
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        key, _, value = line.partition(":")
        if key.strip() == "model name":
          model = value.strip()
        elif key.strip() == "flags":
          flags = set(value.split())
          break
  except OSError:
    pass
  vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "other"
  return {"model": model, "vector_extensions": vector}


def _version(package: str) -> str:
  try:
    return importlib.metadata.version(package)
  except importlib.metadata.PackageNotFoundError:
    return "not installed"


def machine(repo: str) -> Dict[str, Any]:
  """Where runs launched now are trained: commit, library versions and CPU kind."""
  return {"commit": commit_of(repo), "jax": _version("jax"), "jaxlib": _version("jaxlib"),
          "python": platform.python_version(), "cpu": cpu_kind()}


def _read_json(path: str, default: Any) -> Any:
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return default


def _write_json(path: str, value: Any) -> None:
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(value, f, indent=1)
    f.write("\n")
  os.replace(tmp, path)  # a reader never sees half a file


def note_launch(workdir: str, where: Dict[str, Any], cores: Optional[Sequence[int]],
                group: Sequence[str], command: Sequence[str]) -> None:
  """Appends this launch to `workdir`/provenance.json."""
  path = os.path.join(workdir, PROVENANCE_FILE)
  records = _read_json(path, [])
  records.append(dict(where, started=now(), cores=list(cores) if cores else "all",
                      group=list(group), command=list(command)))
  _write_json(path, records)


def note_end(workdir: str, status: str) -> None:
  """Stamps the last launch of `workdir` with its end time and status."""
  path = os.path.join(workdir, PROVENANCE_FILE)
  records = _read_json(path, [])
  if records:
    records[-1].update(ended=now(), status=status)
    _write_json(path, records)


def status(ledger: str, name: str) -> Optional[str]:
  """'done' or 'DIVERGED' when `ledger` holds run `name` as finished, else None."""
  entry = os.path.join(ledger, name)
  if not os.path.exists(os.path.join(entry, workdir_lib.CONFIG_FILE)):
    return None
  if workdir_lib.is_finished(entry):
    return "done"
  if os.path.exists(os.path.join(entry, workdir_lib.DIVERGED_FILE)):
    return "DIVERGED"
  return None


def record(workdir: str, ledger: str) -> List[str]:
  """Copies the small files of the run in `workdir` to `ledger`/<its name>; returns
  the copied paths.  Event files are copied whole (a run writes one per launch)."""
  entry = os.path.join(ledger, os.path.basename(os.path.normpath(workdir)))
  os.makedirs(entry, exist_ok=True)
  sources = [os.path.join(workdir, f) for f in _KEPT]
  sources += sorted(glob.glob(os.path.join(workdir, _EVENTS)))
  copied = []
  for source in sources:
    if os.path.isfile(source):
      target = os.path.join(entry, os.path.basename(source))
      shutil.copyfile(source, target + ".tmp")
      os.replace(target + ".tmp", target)
      copied.append(target)
  return copied


def note_session(ledger: str, session: Dict[str, Any]) -> None:
  """Adds or updates (by its 'started' stamp) one launcher session in sessions.json."""
  os.makedirs(ledger, exist_ok=True)
  path = os.path.join(ledger, SESSIONS_FILE)
  sessions = [s for s in _read_json(path, []) if s.get("started") != session["started"]]
  _write_json(path, sessions + [session])

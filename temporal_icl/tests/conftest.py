"""One XLA compilation cache for the whole test session, subprocesses included, the
tests' XLA flags (binary.TEST_XLA_FLAGS), and run directories shared by the session.

Most tests train the same tiny config, in this process or through the binary;
JAX's persistent cache lets each program compile once instead of once per run
(a binary run of the tiny config: 40 s -> 13 s on a busy 2-core machine).  It
lives in pytest's cache directory, so a second session starts warm (with pytest's
cache provider off, `-p no:cacheprovider`, in a temporary directory of this
session); results are unaffected, since a cached executable is the one XLA would
have compiled.
"""

import fcntl
import os
import shutil
import tempfile

import jax
import pytest

_SETTINGS = {
    "jax_compilation_cache_dir": None,  # set in pytest_configure
    "jax_persistent_cache_min_compile_time_secs": 0,
    "jax_persistent_cache_min_entry_size_bytes": 0,
}


def pytest_configure(config):
  settings = dict(_SETTINGS)
  if getattr(config, "cache", None) is not None:
    cache_dir = str(config.cache.mkdir("jax_compilation_cache"))
  elif os.environ.get("PYTEST_XDIST_WORKER") and os.environ.get("JAX_COMPILATION_CACHE_DIR"):
    cache_dir = os.environ["JAX_COMPILATION_CACHE_DIR"]  # the controller's, set below
  else:  # -p no:cacheprovider
    cache_dir = tempfile.mkdtemp(prefix="jax_compilation_cache-")
  settings["jax_compilation_cache_dir"] = cache_dir
  for name, value in settings.items():
    jax.config.update(name, value)
    os.environ[name.upper()] = str(value)  # for the binaries the tests start
  # Read when the first backend starts, after this hook (binary.cpu_env: why).
  from temporal_icl.tests import binary  # pylint: disable=g-import-not-at-top
  flags = os.environ.get("XLA_FLAGS", "")
  if binary.TEST_XLA_FLAGS not in flags:  # a worker inherits the controller's
    os.environ["XLA_FLAGS"] = f"{flags} {binary.TEST_XLA_FLAGS}".strip()


def shared_workdir(tmp_path_factory, name, make):
  """A directory that `make(path)` fills once per test session, whichever of the
  session's worker processes (pytest-xdist) asks first; the others wait and reuse it.
  Tests only read it."""
  root = tmp_path_factory.getbasetemp()
  if os.environ.get("PYTEST_XDIST_WORKER"):  # <session>/popen-gwN: share <session>
    root = root.parent
  path, done = root / name, root / f"{name}.done"
  with open(root / f"{name}.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not done.exists():
      shutil.rmtree(path, ignore_errors=True)  # a half-made one, from a failed `make`
      path.mkdir()
      make(path)
      done.touch()
  return path


def _train_on_two_devices(workdir):
  from temporal_icl.tests import binary  # pylint: disable=g-import-not-at-top
  result = binary.run_main(workdir, devices=2)
  assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="session")
def two_device_run(tmp_path_factory):
  """Workdir of one finished binary run of the tiny config on 2 CPU devices
  (the reference of the device-count and multi-host tests, made once a session)."""
  return shared_workdir(tmp_path_factory, "two_devices", _train_on_two_devices)

"""One XLA compilation cache for the whole test session, subprocesses included.

Most tests train the same tiny config, in this process or through the binary;
JAX's persistent cache lets each program compile once instead of once per run
(a binary run of the tiny config: 40 s -> 13 s on a busy 2-core machine).  It
lives in pytest's cache directory, so a second session starts warm (with pytest's
cache provider off, `-p no:cacheprovider`, in a temporary directory of this
session); results are unaffected, since a cached executable is the one XLA would
have compiled.
"""

import os
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
  else:  # -p no:cacheprovider
    cache_dir = tempfile.mkdtemp(prefix="jax_compilation_cache-")
  settings["jax_compilation_cache_dir"] = cache_dir
  for name, value in settings.items():
    jax.config.update(name, value)
    os.environ[name.upper()] = str(value)  # for the binaries the tests start


@pytest.fixture(scope="session")
def two_device_run(tmp_path_factory):
  """Workdir of one finished binary run of the tiny config on 2 CPU devices
  (the reference of the device-count and multi-host tests)."""
  from temporal_icl.tests import binary  # pylint: disable=g-import-not-at-top
  workdir = tmp_path_factory.mktemp("two_devices")
  result = binary.run_main(workdir, devices=2)
  assert result.returncode == 0, result.stderr[-3000:]
  return workdir

"""One XLA compilation cache for the whole test session, subprocesses included.

Most tests train the same tiny config, in this process or through the binary;
JAX's persistent cache lets each program compile once instead of once per run
(a binary run of the tiny config: 40 s -> 13 s on a busy 2-core machine).  It
lives in pytest's cache directory, so a second session starts warm; results are
unaffected, since a cached executable is the one XLA would have compiled.
"""

import os

import jax

_SETTINGS = {
    "jax_compilation_cache_dir": None,  # set in pytest_configure
    "jax_persistent_cache_min_compile_time_secs": 0,
    "jax_persistent_cache_min_entry_size_bytes": 0,
}


def pytest_configure(config):
  settings = dict(_SETTINGS)
  settings["jax_compilation_cache_dir"] = str(config.cache.mkdir("jax_compilation_cache"))
  for name, value in settings.items():
    jax.config.update(name, value)
    os.environ[name.upper()] = str(value)  # for the binaries the tests start

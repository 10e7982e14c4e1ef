"""Runs one test file under pytest and exits with pytest's status.

The `main` of every py_test in BUILD: Bazel runs this file with the target's own test
file as the only argument (`args = ["$(rootpath temporal_icl/tests/x_test.py)"]`, a path
relative to the runfiles root, which is the test's working directory).  pytest's exit
status is the test's result, so a file that fails, errors or collects no tests (status
5) fails the target.  Also runnable by hand:

  .venv/bin/python temporal_icl/tests/pytest_main.py temporal_icl/tests/data_test.py
"""

import os
import sys

import pytest


def pytest_args(argv, environ=None):
  """pytest's arguments for `argv` (one *_test.py path) in a Bazel test environment."""
  environ = os.environ if environ is None else environ
  if len(argv) != 1 or not argv[0].endswith("_test.py"):
    raise SystemExit(f"usage: pytest_main.py PATH_test.py (got {argv})")
  # pytest.ini's addopts run the suite on every core (pytest-xdist); under Bazel each
  # file is its own test and Bazel runs them in parallel, so they are dropped here.
  args = [argv[0], "-o", "addopts="]
  if environ.get("TEST_TMPDIR"):  # Bazel's writable directory; not the runfiles tree
    # (conftest.py keeps JAX's compilation cache in pytest's cache directory).
    args += ["-o", f"cache_dir={os.path.join(environ['TEST_TMPDIR'], 'pytest_cache')}"]
  if environ.get("XML_OUTPUT_FILE"):  # Bazel's per-test report
    args.append(f"--junitxml={environ['XML_OUTPUT_FILE']}")
  if environ.get("TESTBRIDGE_TEST_ONLY"):  # bazel test --test_filter=...
    args += ["-k", environ["TESTBRIDGE_TEST_ONLY"]]
  return args


def main(argv):
  return int(pytest.main(pytest_args(argv)))


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))

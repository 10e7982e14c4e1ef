"""The installed package runs from any directory: configs/ is installed with it.

The end-to-end test installs this tree non-editably (`pip install --target`, our
package only, about 2 s) into a temporary directory and runs the binary there from
another directory, against an absolute --config path into the installed configs
package; the gin file the config names ("configs/model/paper.gin") then resolves
to that package's data.  A fresh venv with every dependency would take minutes.
"""

import os
import shutil
import subprocess
import sys

import gin
import ml_collections
import pytest

import configs
from temporal_icl.core import experiment
from temporal_icl.tests import binary
from temporal_icl.training import validation

REPO = binary.REPO
# The tiny config's sizes (tiny_config.py), as flags on the installed configs/mala.py;
# 8 steps: enough to show that the installed configs resolve and the run finishes.
TINY_FLAGS = ["--config.gamma=0.05", "--config.M=4", "--config.D=2", "--config.K=4",
              "--config.delta_prompt_length=4", "--config.model.num_blocks=1",
              "--config.model.num_heads=2", "--config.model.embed_size=16",
              "--config.model.mlp_size=16", "--config.batch_size=8",
              "--config.num_steps=8", "--config.eval_steps=every:8",
              "--config.eval_batch_size=16", "--config.checkpoint_steps=every:8",
              "--config.energy_num_samples=64"]
# Not the package: local state of the checkout, which must not reach the install.
NOT_SOURCES = shutil.ignore_patterns(".git", ".venv", ".pytest_cache", "__pycache__",
                                     "*.egg-info", "build", "runs", ".whl")


def gin_bindings(path):
  """The `name.param = value` lines of a gin file, comments dropped."""
  with open(path) as f:
    lines = (line.split("#")[0].strip() for line in f)
    return [" ".join(line.split()) for line in lines if line]


@pytest.fixture
def gin_config():
  config = ml_collections.ConfigDict(dict(gin_files=(), gin_bindings=()))
  yield config
  gin.clear_config()


def test_a_configs_gin_file_resolves_to_the_installed_package_from_any_directory(
    tmp_path, monkeypatch, gin_config):
  monkeypatch.chdir(tmp_path)  # no configs/ here
  gin_config.gin_files = ("configs/model/paper.gin",)
  experiment.parse_gin(gin_config)
  assert gin.query_parameter("weight_init.scale") == pytest.approx(1 / 3)


def test_a_gin_file_that_exists_as_given_wins(tmp_path, monkeypatch, gin_config):
  monkeypatch.chdir(tmp_path)
  os.makedirs("configs/model")
  with open("configs/model/paper.gin", "w") as f:
    f.write("weight_init.scale = 0.5\n")
  gin_config.gin_files = ("configs/model/paper.gin",)
  experiment.parse_gin(gin_config)
  assert gin.query_parameter("weight_init.scale") == 0.5


@pytest.mark.parametrize("name, looked", [
    ("configs/model/nope.gin", "in the working directory {cwd} and in the installed "
     "configs package at {package}"),
    ("model/nope.gin", "in the working directory {cwd}"),
    ("/no/such/dir/nope.gin", "at /no/such/dir/nope.gin"),
])
def test_a_missing_gin_file_is_one_sentence_naming_where_it_looked(
    tmp_path, monkeypatch, gin_config, name, looked):
  monkeypatch.chdir(tmp_path)
  gin_config.gin_files = (name,)
  with pytest.raises(validation.ConfigError) as raised:
    experiment.parse_gin(gin_config)
  package = os.path.dirname(configs.__file__)
  looked = looked.format(cwd=tmp_path, package=package)
  assert raised.value.problems == [f"gin file {name!r} does not exist (looked {looked})."]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
  """A non-editable install of this tree (our package only, no dependencies)."""
  tmp = tmp_path_factory.mktemp("install")
  # pip builds in the source tree (build/, *.egg-info); build a copy, not the checkout.
  shutil.copytree(REPO, tmp / "src", ignore=NOT_SOURCES)
  result = subprocess.run(
      [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
       "--no-build-isolation", "--no-compile", "--target", str(tmp / "site"),
       str(tmp / "src")], capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  return tmp / "site"


def test_the_install_holds_the_configs_package_and_its_gin_files(site):
  assert os.path.exists(site / "configs" / "__init__.py")
  assert os.path.exists(site / "configs" / "mala.py")
  gin_files = sorted(os.listdir(site / "configs" / "model"))
  assert gin_files == sorted(os.listdir(os.path.join(REPO, "configs", "model")))
  assert "paper.gin" in gin_files
  # ... and the wheel it was installed from listed them.
  (record,) = [d / "RECORD" for d in site.iterdir() if d.name.endswith(".dist-info")]
  assert "configs/model/paper.gin," in record.read_text()


def test_the_binary_runs_from_another_directory_against_the_install(site, tmp_path):
  elsewhere = tmp_path / "elsewhere"
  elsewhere.mkdir()
  env = binary.cpu_env(1, PYTHONPATH=str(site))
  # The install, not the checkout (which the venv's editable install puts on sys.path).
  where = subprocess.run(
      [sys.executable, "-c", "import configs, temporal_icl; "
       "print(configs.__file__); print(temporal_icl.__file__)"],
      cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60)
  assert where.returncode == 0, where.stderr
  assert where.stdout.split() == [str(site / "configs" / "__init__.py"),
                                  str(site / "temporal_icl" / "__init__.py")]

  workdir = tmp_path / "run"
  result = subprocess.run(
      [sys.executable, "-m", "temporal_icl.main", f"--config={site}/configs/mala.py",
       *TINY_FLAGS, f"--workdir={workdir}"],
      cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert os.path.exists(workdir / "FINISHED")
  with open(workdir / "operative_config.gin") as f:
    operative = set(gin_bindings(f.name))
  paper = gin_bindings(site / "configs" / "model" / "paper.gin")
  # mixture_variance_floor configures the mog head only; this run's head is 'point'.
  used = [b for b in paper if not b.startswith("mixture_variance_floor.")]
  assert len(used) >= 8 and set(used) <= operative

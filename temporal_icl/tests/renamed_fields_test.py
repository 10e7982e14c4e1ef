"""Fields renamed in 0.2 keep working until 0.3: moved to their new names, with a warning."""

import json

import pytest

from configs import base
from temporal_icl import renamed_fields
from temporal_icl import step_specs
from temporal_icl import train
from temporal_icl import validation
from temporal_icl import workdir as workdir_lib
from temporal_icl.tests import tiny_config


def test_every_old_name_moves_to_its_new_field_and_disappears():
  c = base.get_config()
  c.eval_every, c.energy_distance_every, c.snapshot_period = 128, 0, 512
  c.checkpoint_every, c.llc_every = 4096, 1000
  c.llc_steps = "log:8"
  c.llc.gamma, c.llc.num_burnin, c.llc.num_draws = 10.0, 50, 200
  messages = renamed_fields.upgrade(c)
  assert (c.eval_steps, c.energy_distance_steps, c.snapshot_steps, c.checkpoint_steps) == (
      "every:128", "", "every:512", "every:4096")
  assert c.llc_steps == "log:8+every:1000"  # the old union of the two fields
  assert (c.llc.localization, c.llc.num_burnin_steps, c.llc.num_draws) == (10.0, 50, 150)
  assert len(messages) == 7 and all("deprecated (removed in 0.3)" in m for m in messages)
  assert "config.eval_every is deprecated (removed in 0.3); this run uses " \
         "config.eval_steps='every:128' instead." in messages
  flat = json.loads(workdir_lib.config_to_json(c))
  for old in renamed_fields.OLD_NAMES:
    head, _, tail = old.partition(".")
    assert (tail or head) not in (flat[head] if tail else flat), old
  assert renamed_fields.upgrade(c) == []  # idempotent


def test_unset_old_names_vanish_silently_and_change_nothing():
  c = base.get_config()
  before = {k: v for k, v in json.loads(workdir_lib.config_to_json(c)).items()
            if k not in renamed_fields.OLD_NAMES}
  assert renamed_fields.upgrade(c) == []
  after = json.loads(workdir_lib.config_to_json(c))
  before["llc"] = {k: v for k, v in before["llc"].items() if k not in ("gamma", "num_burnin")}
  assert after == before


def test_old_names_mean_what_they_meant():
  """every:N and the old `range(0, T + 1, N) | {T}` name the same steps."""
  c = tiny_config.get_config()
  c.snapshot_period, c.num_steps = 7, 48
  renamed_fields.upgrade(c)
  assert step_specs.parse(c.snapshot_steps, 48) == sorted(set(range(0, 49, 7)) | {48})


def test_a_run_upgrades_old_names_once_then_validates_them(tmp_path, monkeypatch):
  calls = []
  upgrade = renamed_fields.upgrade
  monkeypatch.setattr(renamed_fields, "upgrade", lambda c: calls.append(1) or upgrade(c))
  c = tiny_config.get_config()
  c.energy_distance_every = 8  # the point head cannot sample
  with pytest.raises(validation.ConfigError) as raised:
    train.train_and_evaluate(c, str(tmp_path / "run"))
  assert raised.value.problems[0].startswith(
      "config.energy_distance_steps='every:8' samples the implicit prior")
  assert len(calls) == 1


def test_validation_refuses_a_config_that_skipped_the_upgrade():
  c = base.get_config()
  c.eval_every = 128
  assert validation.find_problems(c) == [
      "config.eval_every is a pre-0.2 field name: pass the config through "
      "renamed_fields.upgrade first (train_and_evaluate does)."]


def test_readers_see_a_run_recorded_under_old_names_in_new_ones(tmp_path):
  from temporal_icl import export  # pylint: disable=g-import-not-at-top
  from temporal_icl import plots  # pylint: disable=g-import-not-at-top
  recorded = _recorded_by_0_1(tiny_config.get_config())
  (tmp_path / workdir_lib.CONFIG_FILE).write_text(json.dumps(recorded))
  config = export.to_reference_json(str(tmp_path))["config"]
  assert config["eval_steps"] == "every:8" and "eval_every" not in config
  assert config["llc"]["localization"] == 100.0 and "gamma" not in config["llc"]
  assert workdir_lib.read_config(str(tmp_path)) == config
  plots.plot_run(str(tmp_path), str(tmp_path / "plots"))  # reads it too (no summaries)


def _recorded_by_0_1(c):
  """The config.json that 0.1 wrote for `c`: the old names, none of the new ones."""
  renamed_fields.upgrade(c)
  recorded = json.loads(workdir_lib.config_to_json(c))
  for old, new in renamed_fields.EVERY_N.items():
    spec = recorded.pop(new)
    recorded[old] = int(spec.partition(":")[2]) if spec else 0
  recorded["llc_every"] = 0
  llc = recorded["llc"]
  llc["gamma"], llc["num_burnin"] = llc.pop("localization"), llc.pop("num_burnin_steps")
  return recorded


def test_a_run_recorded_under_old_names_resumes_under_new_ones(tmp_path):
  c = tiny_config.get_config()
  recorded = _recorded_by_0_1(c)
  (tmp_path / workdir_lib.CONFIG_FILE).write_text(json.dumps(recorded))
  workdir_lib.prepare(str(tmp_path), c, resumable_changes=())  # no ResumeError
  assert workdir_lib.load_config(str(tmp_path)).eval_steps == c.eval_steps
  c.eval_steps = "every:4"  # a real difference is still refused
  (tmp_path / workdir_lib.CONFIG_FILE).write_text(json.dumps(recorded))
  with pytest.raises(workdir_lib.ResumeError, match="eval_steps: 'every:8' -> 'every:4'"):
    workdir_lib.prepare(str(tmp_path), c, resumable_changes=())

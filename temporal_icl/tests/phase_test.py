"""The threshold M* of a phase diagram, on synthetic curves with known answers."""

import math

import numpy as np
import pytest

from temporal_icl.analysis import phase

GRID = [1, 2, 4, 8, 16, 32, 64, 128, 256]


def test_a_single_crossing_is_interpolated_in_log2_M():
  # r rises linearly in log2 M through 1 between M = 8 (r = 0.5) and 16 (r = 1.5).
  ratios = [0.5 + (math.log2(M) - 3) for M in GRID]
  ratios = [min(r, 0.5) if M <= 8 else r for M, r in zip(GRID, ratios)]
  found = phase.threshold(GRID, ratios)
  assert found.status == "crossed"
  assert found.M_star == pytest.approx(2 ** 3.5)  # halfway in log2 between 8 and 16


def test_the_crossing_after_which_r_stays_above_one_counts():
  # Above 1 at M = 2, below again at 4 and 8, above from 16 on: M* is in (8, 16).
  ratios = [0.5, 1.2, 0.9, 0.8, 1.1, 2.0, 3.0, 4.0, 5.0]
  found = phase.threshold(GRID, ratios)
  expected = 2 ** (3 + (1 - 0.8) / (1.1 - 0.8))
  assert found.M_star == pytest.approx(expected)
  assert phase.threshold(GRID[::-1], ratios[::-1]) == found  # grid order is irrelevant


def test_exactly_one_is_not_above_one():
  found = phase.threshold([1, 2, 4], [0.5, 1.0, 2.0])
  assert found.M_star == pytest.approx(2 ** (1 + 0 / 1.0))  # at M = 2, where r = 1


@pytest.mark.parametrize("ratios, status", [
    ([1.5, 2.0, 3.0], phase.BELOW_GRID),
    ([0.1, 0.5, 0.9], phase.ABOVE_GRID),
    ([0.1, 2.0, 0.9], phase.ABOVE_GRID),  # above once, but not at the largest M
])
def test_curves_that_do_not_cross_inside_the_grid_say_so(ratios, status):
  assert phase.threshold([1, 2, 4], ratios) == phase.Threshold(None, status)


def _rows():
  """A synthetic sweep: M* = 2^(5 − 100 γ) for seed 0 and 2^(5.5 − 100 γ) for seed 1,
  with r = 2^(log2 M − log2 M*) (so log2 r is linear in log2 M)."""
  rows = []
  for gamma in (0.0, 0.01, 0.03):
    for seed, centre in ((0, 5.0), (1, 5.5)):
      for M in GRID:
        r = 2 ** (math.log2(M) - (centre - 100 * gamma))
        rows.append({"M": M, "schedule": "mala", "gamma": gamma, "R": 1, "seed": seed,
                     "step": 9216,
                     "test_delta_dmmse": r, "test_delta_ridge": 1.0,
                     "train_delta_dmmse": 1.0, "train_delta_ridge": 1.0 / r,
                     **{f"{s}_error_{w}": 1.0 for s in ("train", "test")
                        for w in ("model", "ridge", "dmmse")}})
  return rows


def test_thresholds_of_a_sweep_and_its_csv_round_trip(tmp_path):
  rows = _rows()
  path = str(tmp_path / "phase.csv")
  phase.write_csv(rows, path)
  assert phase.read_csv(path) == rows
  found = phase.thresholds(phase.read_csv(path), "test")
  for (gamma, seed), t in found.items():
    centre = (5.0 if seed == 0 else 5.5) - 100 * gamma
    lo = 2 ** math.floor(centre)
    hi = 2 * lo
    # Linear interpolation of r between grid points: r(lo) = 2^(floor − centre).
    r_lo, r_hi = lo / 2 ** centre, hi / 2 ** centre
    expected = 2 ** (math.log2(lo) + (1 - r_lo) / (r_hi - r_lo))
    assert t.M_star == pytest.approx(expected), (gamma, seed)
  # Train tasks use train Δ_dMMSE / Δ_Ridge: here the same r.
  assert phase.thresholds(rows, "train") == found


def test_the_table_lists_each_seed_and_the_mean(tmp_path):
  table = phase.markdown_table(_rows(), "test").splitlines()
  assert table[0].startswith("| γ | seed 0 | seed 1 | mean ± std |")
  found = phase.thresholds(_rows(), "test")
  for line, gamma in zip(table[2:], (0.0, 0.01, 0.03)):
    cells = [c.strip() for c in line.strip("|").split("|")]
    values = [found[(gamma, s)].M_star for s in (0, 1)]
    assert cells[1:3] == [f"{v:.3g}" for v in values]
    assert cells[3] == f"{np.mean(values):.3g} ± {np.std(values, ddof=1):.2g}"


def test_the_heat_map_is_drawn(tmp_path):
  path = phase.plot_heat_map(_rows(), str(tmp_path / "heat.png"))
  assert path and (tmp_path / "heat.png").stat().st_size > 10_000


def _resampling_rows():
  """The same sweep with R in place of γ: M* = 64 / R for seed 0, γ = 0."""
  rows = []
  for R in (1, 4, 16):
    for M in GRID:
      r = 2 ** (math.log2(M) - math.log2(64 / R))
      rows.append({"M": M, "schedule": "dirichlet", "gamma": 0.0, "R": R, "seed": 0,
                   "step": 9216, "test_delta_dmmse": r, "test_delta_ridge": 1.0,
                   "train_delta_dmmse": r, "train_delta_ridge": 1.0,
                   **{f"{s}_error_{w}": 1.0 for s in ("train", "test")
                      for w in ("model", "ridge", "dmmse")}})
  return rows


def test_a_resampling_sweep_has_one_curve_per_R(tmp_path):
  rows = _resampling_rows()
  assert phase.strength_axis(rows) == "R"
  found = phase.thresholds(rows)
  assert sorted(found) == [(1, 0), (4, 0), (16, 0)]  # not one curve for γ = 0
  for R in (1, 4, 16):
    assert found[(R, 0)].M_star == pytest.approx(64 / R)
  path = tmp_path / "resample.csv"
  phase.write_csv(rows, str(path))
  assert phase.thresholds(phase.read_csv(str(path))) == found
  assert phase.markdown_table(rows).splitlines()[0].startswith("| R |")


def test_a_sweep_that_mixes_resampling_and_mala_is_refused():
  with pytest.raises(ValueError, match="mixes resampling runs"):
    phase.strength_axis(_rows() + _resampling_rows())


def test_a_csv_without_schedule_and_R_columns_reads_as_mala(tmp_path):
  path = tmp_path / "old.csv"
  rows = _rows()
  old_columns = [c for c in phase.COLUMNS if c not in ("schedule", "R")]
  with open(path, "w") as f:
    f.write(",".join(old_columns) + "\n")
    for row in rows:
      f.write(",".join(repr(row[c]) if isinstance(row[c], float) else str(row[c])
                       for c in old_columns) + "\n")
  read = phase.read_csv(str(path))
  assert {r["schedule"] for r in read} == {"mala"} and {r["R"] for r in read} == {1}
  assert phase.thresholds(read) == phase.thresholds(rows)


def test_the_points_that_have_not_finished_are_counted_by_M():
  rows = [r for r in _rows() if not (r["M"] == 256 or (r["M"] == 128 and r["seed"] == 1))]
  sweep = [{"M": M, "gamma": g, "seed": s} for M in GRID for g in (0.0, 0.01, 0.03)
           for s in (0, 1)]
  assert phase.missing(rows, sweep) == {128: 3, 256: 6}
  assert phase.missing(_rows(), sweep) == {}
  resampling = [{"M": M, "R": R, "seed": 0} for M in GRID for R in (1, 4, 16, 64)]
  assert phase.missing(_resampling_rows(), resampling) == {M: 1 for M in GRID}  # R = 64

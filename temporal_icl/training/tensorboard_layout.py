"""The custom-scalars layout every run writes: Δ_PT and errors side by side.

TensorBoard's "Custom Scalars" dashboard then shows, per run, Δ_PT,dMMSE beside
Δ_PT,Ridge (one chart for training tasks, one for held-out tasks) and the errors
of the model, ridge and dMMSE in one chart per split: whether a model memorises
or generalises is read off one chart instead of four.
"""

import numpy as np
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import metadata

from temporal_icl.common import metric_names as names


def _tags(split: str, kind: str, whos) -> str:
  """The regex of the tags {split}_{kind}_{who} for each of `whos`."""
  return rf"^{split}_{kind}_({'|'.join(whos)})$"


def layout() -> layout_pb2.Layout:
  deltas, errors = (names.DMMSE, names.RIDGE), (names.MODEL, names.RIDGE, names.DMMSE)

  def chart(title, regex):
    return layout_pb2.Chart(title=title,
                            multiline=layout_pb2.MultilineChartContent(tag=[regex]))
  return layout_pb2.Layout(category=[layout_pb2.Category(
      title="memorisation or generalisation",
      chart=[chart("Δ_PT on train tasks: dMMSE, Ridge", _tags("train", names.DELTA, deltas)),
             chart("Δ_PT on test tasks: dMMSE, Ridge", _tags("test", names.DELTA, deltas)),
             chart("test error: model, ridge, dMMSE", _tags("test", names.ERROR, errors)),
             chart("train error: model, ridge, dMMSE",
                   _tags("train", names.ERROR, errors))])])


def write(summary_writer) -> None:
  """Writes the layout with a clu.metric_writers.SummaryWriter (step 0)."""
  tag = metadata.CONFIG_SUMMARY_TAG
  summary_writer.write_summaries(
      0, {tag: np.asarray(layout().SerializeToString(), dtype=object)},
      metadata={tag: metadata.create_summary_metadata().SerializeToString()})

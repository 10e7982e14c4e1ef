"""The custom-scalars layout every run writes: Δ_PT and errors side by side.

TensorBoard's "Custom Scalars" dashboard then shows, per run, Δ_PT,dMMSE beside
Δ_PT,Ridge (one chart for training tasks, one for held-out tasks) and the errors
of the model, ridge and dMMSE in one chart per split: whether a model memorises
or generalises is read off one chart instead of four.
"""

import numpy as np
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import metadata


def layout() -> layout_pb2.Layout:
  def chart(title, regex):
    return layout_pb2.Chart(title=title,
                            multiline=layout_pb2.MultilineChartContent(tag=[regex]))
  return layout_pb2.Layout(category=[layout_pb2.Category(
      title="memorisation or generalisation",
      chart=[chart("Δ_PT on train tasks: dMMSE, Ridge", r"^train_delta_(dmmse|ridge)$"),
             chart("Δ_PT on test tasks: dMMSE, Ridge", r"^test_delta_(dmmse|ridge)$"),
             chart("test error: model, ridge, dMMSE", r"^test_error_(model|ridge|dmmse)$"),
             chart("train error: model, ridge, dMMSE",
                   r"^train_error_(model|ridge|dmmse)$")])])


def write(summary_writer) -> None:
  """Writes the layout with a clu.metric_writers.SummaryWriter (step 0)."""
  tag = metadata.CONFIG_SUMMARY_TAG
  summary_writer.write_summaries(
      0, {tag: np.asarray(layout().SerializeToString(), dtype=object)},
      metadata={tag: metadata.create_summary_metadata().SerializeToString()})

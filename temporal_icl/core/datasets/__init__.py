"""Fixed, prepared evaluation sets as TFDS builders.

Nothing else in ``temporal_icl`` imports this package: it pulls in TensorFlow
Datasets, and is needed only when a run evaluates on a stored set
(``config.eval_dataset``).  Importing it registers the ``iclr_eval`` builder
with TFDS, so ``tfds.load("iclr_eval/d8_k16")`` works too.
"""

from temporal_icl.core.datasets.iclr_eval import IclrEval
from temporal_icl.core.datasets.iclr_eval import IclrEvalConfig
from temporal_icl.core.datasets.iclr_eval import load_eval_batch
from temporal_icl.core.datasets.iclr_eval import make_builder_config
from temporal_icl.core.datasets.iclr_eval import read_eval_batch

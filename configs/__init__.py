"""Experiment configs (ml_collections, `configs/*.py`) and gin model files (`model/*.gin`).

Installed with temporal_icl, so `--config=/path/to/configs/mala.py` runs from any
directory; gin files named "configs/model/<name>.gin" in a config resolve to this
package's data when no such path exists relative to the working directory.
"""

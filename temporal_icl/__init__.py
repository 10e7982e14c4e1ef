"""temporal_icl: in-context linear regression under non-stationary task distributions.

Shape letters used in docstrings throughout the package:
  B  batch of sequences          K  in-context pairs per sequence
  D  task / input dimension      M  number of tasks in the training set
  T  total training steps        R  resampling events (segments) per task
  G  mixture components          S  predictive Monte Carlo samples
"""

__version__ = "0.3.0"

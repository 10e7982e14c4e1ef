"""The error a bad config value raises; a leaf, so that every layer can raise it."""

from typing import List


class ConfigError(ValueError):
  """A config value is invalid; `problems` holds one sentence per problem."""

  def __init__(self, problems: List[str]):
    self.problems = list(problems)
    super().__init__("Invalid config:\n" + "\n".join(f"  - {p}" for p in problems))

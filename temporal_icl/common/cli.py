"""What every command-line tool does with a user mistake: one sentence, exit 2."""

import sys


def fail(message: str) -> None:
  """Prints `error: <message>` to stderr and exits with status 2 (no traceback)."""
  print(f"error: {message}", file=sys.stderr)
  sys.exit(2)

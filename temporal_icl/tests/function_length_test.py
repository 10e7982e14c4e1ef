"""No function of the package is longer than MAX_LINES lines (design.md: a loop you
can read in parts).  Counted with `ast`, from `def` to the last line, docstring
included; nested functions count inside their parent too."""

import ast
import pathlib

import temporal_icl

MAX_LINES = 60


def long_functions(root: pathlib.Path, limit: int = MAX_LINES):
  """[(path, name, lines)] of the functions under `root` longer than `limit` lines."""
  found = []
  for path in sorted(root.rglob("*.py")):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
      if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        lines = node.end_lineno - node.lineno + 1
        if lines > limit:
          found.append((str(path.relative_to(root.parent)), node.name, lines))
  return found


def test_no_function_of_the_package_is_over_60_lines():
  assert long_functions(pathlib.Path(temporal_icl.__file__).parent) == []


def test_the_check_sees_a_long_function(tmp_path):
  body = "\n".join(f"  x{i} = {i}" for i in range(MAX_LINES))
  (tmp_path / "long.py").write_text(f"def f():\n{body}\n")
  assert long_functions(tmp_path) == [(f"{tmp_path.name}/long.py", "f", MAX_LINES + 1)]

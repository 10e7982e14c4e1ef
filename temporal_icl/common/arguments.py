"""Argument checks of the library's public functions, with one-sentence errors.

The rollouts (prior), the Bayes baselines (baselines), the energy distance and
its samplers (energy) and the LLC estimator (llc) check what a researcher hands
them here, before any JAX operation can fail on it with an error about
concatenate, broadcasting or MLIR:

  array(...)  an array (or nested lists of numbers) of a given shape, its sizes
              shared with the other arguments of the call;
  count(...)  a static size (an int, not a float or a traced value);
  key(...)    one PRNG key.

Errors name the function, the argument, the shape it needs and the shape it
got.  The checks read static shapes and dtypes only, so they run unchanged
while these functions are traced inside jit, lax.map or vmap.
"""

import operator
from typing import Any, Dict, Optional, Tuple

import jax
import jax.numpy as jnp

Dims = Dict[str, Tuple[int, str]]  # letter -> (size, where the size came from)


def describe(value: Any) -> str:
  """A short description of a value for an error message: its type and shape or repr."""
  if hasattr(value, "shape") and hasattr(value, "dtype"):
    article = "an" if str(value.dtype)[0] in "aeiou" else "a"
    return f"{article} {value.dtype} array of shape {tuple(value.shape)}"
  text = repr(value)
  return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def array(caller: str, name: str, value: Any, spec: str,
          dims: Optional[Dims] = None) -> jax.Array:
  """`value` as a jax array of shape `spec`, or a one-sentence error naming `name`.

  Args:
    caller: the public function, as the error names it ("baselines.ridge").
    name: the argument, as the error names it ("ys", "prompt xs").
    value: an array or nested lists of numbers (converted by jnp.asarray); a
      tracer is fine, only its static shape is read.
    spec: one letter (or size) per axis, space-separated: "B K D".
    dims: the sizes of letters already known, shared across one call's
      arguments (updated here with the letters `value` fixes), so that a
      letter means one size in all of them.

  Returns:
    The array.

  Raises:
    TypeError: `value` is not an array of numbers.
    ValueError: its shape is not `spec`.
  """
  try:
    converted = jnp.asarray(value)
  except (TypeError, ValueError):
    converted = None
  if converted is None or not jnp.issubdtype(converted.dtype, jnp.number):
    raise TypeError(f"{caller}: {name} must be an array of numbers (or nested lists of "
                    f"numbers); got {describe(value)}.")
  dims = {} if dims is None else dims
  letters, shape = spec.split(), tuple(converted.shape)
  needed = [int(l) if l.isdigit() else dims[l][0] if l in dims else None for l in letters]
  new = {}
  fits = len(shape) == len(letters)
  for letter, size, got in zip(letters, needed, shape if fits else ()):
    if size is None and letter in new:
      size = new[letter]
    if size is not None and size != got:
      fits = False
    new.setdefault(letter, got)
  if not fits:
    wanted = f"[{', '.join(letters)}]"
    if any(size is not None for size in needed):
      sizes = [letter if size is None else str(size) for letter, size in zip(letters, needed)]
      wanted += f" = ({', '.join(sizes)}{',' if len(sizes) == 1 else ''})"
    sources = list(dict.fromkeys(dims[l][1] for l in letters if l in dims))
    match = f" to match {' and '.join(sources)}" if sources else ""
    raise ValueError(f"{caller}: {name} must have shape {wanted}{match}; got {shape}.")
  source = f"{name} [{', '.join(letters)}] = {shape}"
  for letter, size in new.items():
    if not letter.isdigit():
      dims.setdefault(letter, (size, source))
  return converted


def count(caller: str, name: str, value: Any, minimum: int = 0) -> int:
  """`value` as an int >= minimum (a static size), or a one-sentence error.

  Raises:
    TypeError: `value` is not an int (a float, a bool, a traced value).
    ValueError: it is below `minimum`.
  """
  try:
    if isinstance(value, bool):
      raise TypeError
    size = operator.index(value)
  except TypeError:
    raise TypeError(f"{caller}: {name} must be an int (a static size); got "
                    f"{describe(value)}.") from None
  if size < minimum:
    raise ValueError(f"{caller}: {name} must be >= {minimum}; got {size}.")
  return size


def key(caller: str, name: str, value: Any) -> Any:
  """`value` if it is one PRNG key (typed or raw uint32 data), else a one-sentence error.

  Raises:
    TypeError: `value` is not a PRNG key (an int seed, a float array).
    ValueError: it is a batch of keys.
  """
  dtype, shape = getattr(value, "dtype", None), getattr(value, "shape", None)
  if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
    one = shape == ()
  elif dtype == jnp.uint32 and shape is not None and len(shape) >= 1:
    one = len(shape) == 1
  else:
    raise TypeError(f"{caller}: {name} must be a PRNG key (jax.random.key(seed) or "
                    f"jax.random.PRNGKey(seed)); got {describe(value)}.")
  if not one:
    raise ValueError(f"{caller}: {name} must be one PRNG key, not a batch of them; got "
                     f"{describe(value)}.")
  return value

"""Input checking shared by every public entry point.

One place decides what a number, an array of numbers, a covariance matrix or
a piece of user text is allowed to be, so that every public function refuses
bad input the same way: ``TypeError`` for a wrong type, ``ValueError`` for a
bad value, each naming the argument.

Why it matters: :func:`sympy.sympify`, :func:`sympy.nsimplify` and
``sympy.Matrix`` *evaluate strings as Python*.  The helpers here never hand a
string to SymPy; text reaches SymPy only through the whitelist parser of
:func:`symlora.activation`.

Scalars and arrays
------------------
Numeric functions of ``mu`` (``tau``, ``coefficients``, ...) accept a Python
or numpy number, a SymPy number, or an array-like of them.  A scalar in gives
a Python ``float`` out; an array in gives a numpy array of the same shape
(:func:`scalar_or_array`).
"""

from __future__ import annotations

import math
import numbers
from fractions import Fraction

import numpy as np
import sympy as sp

__all__ = [
    "MAGNITUDE_LIMIT",
    "MU_MAX",
    "as_exact_number",
    "as_float",
    "as_float_array",
    "check_mu",
    "check_text",
    "covariance_matrix",
    "scalar_or_array",
]

#: Numeric model parameters and constants in activations must lie in
#: ``[1/MAGNITUDE_LIMIT, MAGNITUDE_LIMIT]`` in absolute value: the generated
#: double-precision code squares them (``η²``, ``a²``), and beyond this range
#: the squares overflow or underflow.
MAGNITUDE_LIMIT = 1e30
#: Largest pre-training strength accepted by numeric functions of ``mu``
#: (``a(μ)``, ``b(μ)`` grow like powers of ``μ``; ``τ`` is then far below any
#: time a run could resolve).
MU_MAX = 1e6
#: Largest number of elements of an array argument (``mu``, ``eps``, ...).
MAX_ARRAY_SIZE = 10**6


def _is_text(value) -> bool:
    return isinstance(value, (str, bytes, bytearray, memoryview))


def _type_name(value) -> str:
    return type(value).__name__


def as_exact_number(value, name: str, *, symbolic: bool = False, positive: bool = False,
                    nonnegative: bool = False, integer: bool = False, rationalize: bool = True) -> sp.Expr:
    """``value`` as an exact SymPy number (or expression if ``symbolic``).

    Floats become the rational they print as (``0.1 -> 1/10``).  Strings are
    refused with ``TypeError`` before anything parses them.

    Parameters
    ----------
    value : int, float, fractions.Fraction, numpy scalar, 0-d array or sympy.Expr
    name : str
        The argument name used in messages.
    symbolic : bool
        Accept SymPy expressions with free symbols (checked only where the
        sign is known).
    positive, nonnegative, integer : bool
        Value constraints (``ValueError`` when violated).
    rationalize : bool
        Turn floats (Python, numpy and SymPy) into the rationals they print
        as; with ``False`` they stay SymPy Floats.

    Examples
    --------
    >>> as_exact_number(0.25, "mu")
    1/4
    >>> as_exact_number("1", "mu")
    Traceback (most recent call last):
    ...
    TypeError: mu must be a number, not a string
    """
    if _is_text(value):
        raise TypeError(f"{name} must be a number, not a string")
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a number, not a bool")
    if isinstance(value, np.ndarray):
        if value.ndim != 0:
            raise TypeError(f"{name} must be a single number, got an array of shape {value.shape}")
        value = value[()]
        if _is_text(value) or isinstance(value, np.bool_):
            raise TypeError(f"{name} must be a number, not {_type_name(value)}")
    if isinstance(value, sp.Basic):
        if not isinstance(value, sp.Expr):
            raise TypeError(f"{name} must be a SymPy expression or a number, got {_type_name(value)}")
        result = value
    elif isinstance(value, (numbers.Integral,)):
        result = sp.Integer(int(value))
    elif isinstance(value, Fraction):
        result = sp.Rational(value.numerator, value.denominator)
    elif isinstance(value, numbers.Real):
        f = float(value)
        if not math.isfinite(f):
            raise ValueError(f"{name} must be finite, got {f}")
        # the shortest decimal that prints as f, read exactly (0.1 -> 1/10)
        if rationalize:
            exact = Fraction(repr(f))
            result = sp.Rational(exact.numerator, exact.denominator)
        else:
            result = sp.Float(f)
    elif isinstance(value, numbers.Complex):
        raise ValueError(f"{name} must be real, got {value!r}")
    else:
        raise TypeError(f"{name} must be a number, got {_type_name(value)}")
    if result.free_symbols:
        if not symbolic:
            raise ValueError(f"{name} must be a number, got the expression {result}")
    else:
        _check_real_finite_constant(result, name)
        if rationalize and isinstance(result, sp.Float):
            result = sp.nsimplify(result, rational=True)
    if positive and result.is_positive is False:
        raise ValueError(f"{name} must be positive, got {result}")
    if nonnegative and result.is_negative:
        raise ValueError(f"{name} must be non-negative, got {result}")
    if integer and result.is_integer is False:
        raise ValueError(f"{name} must be a whole number, got {result}")
    return result


def _check_real_finite_constant(value: sp.Expr, name: str) -> None:
    if value.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
        raise ValueError(f"{name} must be finite, got {value}")
    if value.is_real is False or value.has(sp.I):
        raise ValueError(f"{name} must be real, got {value}")
    if value.is_real is None:
        # e.g. (-1)**(1/3): decide numerically, at a precision far beyond rounding
        number = sp.N(value, 30)
        if not number.is_number or number.has(sp.nan, sp.zoo):
            raise ValueError(f"{name} must be a finite real number, got {value}")
        re, im = number.as_real_imag()
        if im != 0 and abs(im) > 1e-25 * max(1, abs(re)):
            raise ValueError(f"{name} must be real, got {value}")


def as_float(value, name: str, *, positive=False, nonnegative=False, low=None, high=None) -> float:
    """``value`` as a finite Python float (no strings, no bools, no arrays)."""
    number = as_exact_number(value, name, positive=positive, nonnegative=nonnegative)
    try:
        result = float(number)
    except OverflowError:
        result = math.inf
    if not math.isfinite(result):
        raise ValueError(f"{name} is too large for double precision")
    _check_range(np.asarray(result), name, low, high)
    return result


def _check_range(values: np.ndarray, name: str, low, high) -> None:
    if low is not None and np.any(values < low):
        raise ValueError(f"{name} must be >= {low:g}, got {values[values < low].flat[0]:g}")
    if high is not None and np.any(values > high):
        raise ValueError(f"{name} must be <= {high:g}, got {values[values > high].flat[0]:g}")


def as_float_array(value, name: str, *, positive=False, nonnegative=False, low=None, high=None,
                   max_size: int = MAX_ARRAY_SIZE, allow_inf: bool = False) -> tuple[np.ndarray, bool]:
    """``value`` as a finite float array, and whether it was a scalar.

    Accepts numbers (Python, numpy, SymPy) and array-likes of them.  Strings,
    bools, complex and non-finite values are refused.

    Returns
    -------
    (numpy.ndarray, bool)
        The values (at least 0-d) and ``True`` if the input was a scalar.

    Examples
    --------
    >>> as_float_array([0.1, 0.5], "mu")
    (array([0.1, 0.5]), False)
    >>> as_float_array(0.5, "mu")
    (array(0.5), True)
    """
    if _is_text(value):
        raise TypeError(f"{name} must be a number or an array of numbers, not a string")
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a number, not a bool")
    if isinstance(value, (float, np.floating)) and allow_inf and math.isinf(value):
        arr = np.asarray(float(value))
    elif isinstance(value, (sp.Basic, numbers.Number)) and not isinstance(value, np.ndarray):
        scalar = as_float(value, name)
        arr = np.asarray(scalar)
    else:
        if isinstance(value, (dict, set, frozenset)):
            raise TypeError(f"{name} must be a number or an array of numbers, got {_type_name(value)}")
        try:
            raw = np.asarray(value)
        except (ValueError, TypeError) as exc:
            raise TypeError(f"{name} must be a number or an array of numbers: {exc}") from None
        if raw.size > max_size:
            raise ValueError(f"{name} has {raw.size} elements; at most {max_size} are accepted")
        kind = raw.dtype.kind
        if kind in "USV":
            raise TypeError(f"{name} must contain numbers, not strings")
        if kind == "b":
            raise TypeError(f"{name} must contain numbers, not bools")
        if kind == "c":
            if np.any(raw.imag != 0):
                raise ValueError(f"{name} must be real")
            raw = raw.real
        if kind == "O":
            flat = [float(v) if allow_inf and isinstance(v, float) and math.isinf(v) else as_float(v, f"{name} entry")
                    for v in raw.ravel()]
            raw = np.array(flat, dtype=float).reshape(raw.shape)
        arr = raw.astype(float)
    if not np.all(np.isfinite(arr) | (allow_inf & np.isinf(arr))):
        raise ValueError(f"{name} must not be nan" if allow_inf else f"{name} must be finite")
    if positive and np.any(arr <= 0):
        raise ValueError(f"{name} must be positive")
    if nonnegative and np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0")
    _check_range(arr, name, low, high)
    return arr, arr.ndim == 0


def check_mu(mu, name: str = "mu") -> tuple[np.ndarray, bool]:
    """Pre-training strengths: finite, ``0 <= mu <= MU_MAX`` (the model's range).

    Every numeric function of ``mu`` goes through here, so that ``mu``
    outside the range is refused the same way everywhere.
    """
    return as_float_array(mu, name, low=0.0, high=MU_MAX)


def scalar_or_array(values, scalar: bool):
    """A Python float when the input was a scalar, else a numpy array."""
    values = np.asarray(values, dtype=float)
    if scalar and values.size == 1:
        return float(values.reshape(()))
    return values


#: Runs estimated to need more memory (bytes) or more floating-point
#: operations (about 1e9 per second and core) than this are refused up front.
MEMORY_BUDGET = 2 * 2**30
WORK_BUDGET = 4e12


def check_budget(memory: float, work: float, what: str, advice: str) -> None:
    """Refuse a computation whose estimated memory or work exceeds the budgets.

    Raises
    ------
    ValueError
        Stating the estimate, the limit and ``advice``.

    Examples
    --------
    >>> check_budget(1e3, 1e6, "this run", "use fewer seeds")
    >>> check_budget(1e12, 1e6, "this run", "use fewer seeds")
    Traceback (most recent call last):
    ...
    ValueError: this run would need about 931 GiB of memory (limit 2 GiB); use fewer seeds
    """
    if memory > MEMORY_BUDGET:
        raise ValueError(
            f"{what} would need about {memory / 2**30:.3g} GiB of memory (limit {MEMORY_BUDGET / 2**30:g} GiB); "
            f"{advice}"
        )
    if work > WORK_BUDGET:
        raise ValueError(
            f"{what} would take about {work / 1e9 / 3600:.3g} CPU hours ({work:.2g} operations; limit "
            f"{WORK_BUDGET / 1e9 / 3600:.2g} hours); {advice}"
        )


def check_text(value, name: str, limit: int) -> str:
    """A string of at most ``limit`` characters (checked before anything else)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {_type_name(value)}")
    if len(value) > limit:
        raise ValueError(f"{name} is too long ({len(value)} characters, at most {limit})")
    return value


def check_magnitude(value: sp.Expr, name: str, limit: float = MAGNITUDE_LIMIT) -> None:
    """Refuse numeric values outside ``[1/limit, limit]`` in absolute value (0 allowed)."""
    if value.free_symbols or value == 0:
        return
    magnitude = abs(sp.N(value, 20))
    if magnitude > limit or magnitude < 1 / limit:
        raise ValueError(
            f"{name} = {sp.N(value, 6)} is outside [{1 / limit:g}, {limit:g}] in absolute value; "
            "double-precision numerics would overflow or lose it"
        )


def covariance_matrix(cov, n: int, name: str = "cov") -> sp.ImmutableMatrix:
    """A symmetric, positive semi-definite ``n x n`` covariance as a SymPy matrix.

    Entries are converted one by one with :func:`as_exact_number` (symbols
    allowed), so that no string is ever parsed.  Numeric entries must be real
    and finite; a numeric matrix must be positive semi-definite; a symbolic
    one must not have a diagonal entry known to be negative.

    Raises
    ------
    TypeError
        ``cov`` is not a nested sequence or matrix, or an entry is not a number.
    ValueError
        Wrong shape, not symmetric, not finite, not real, not PSD.
    """
    if _is_text(cov):
        raise TypeError(f"{name} must be a square matrix (nested lists or a SymPy Matrix), not a string")
    if isinstance(cov, sp.MatrixBase):
        rows = cov.tolist()
    else:
        if isinstance(cov, np.ndarray) and cov.ndim != 2:
            raise ValueError(f"{name} must be a 2-d matrix, got an array of shape {cov.shape}")
        try:
            rows = [list(row) if not _is_text(row) else None for row in cov]
        except TypeError as exc:
            raise TypeError(f"{name} must be a square matrix (nested lists or a SymPy Matrix): {exc}") from None
        if any(row is None for row in rows):
            raise TypeError(f"{name} rows must be sequences of numbers, not strings")
    if len(rows) != n or any(len(row) != n for row in rows):
        shape = (len(rows), len(rows[0]) if rows else 0)
        raise ValueError(f"{name} has shape {shape}; expected ({n}, {n}) for {n} variables")
    entries = [[as_exact_number(c, f"{name} entry", symbolic=True, rationalize=False) for c in row] for row in rows]
    matrix = sp.ImmutableMatrix(entries)
    if matrix != matrix.T and not all(
        sp.cancel(matrix[i, j] - matrix[j, i]) == 0 for i in range(n) for j in range(i + 1, n)
    ):
        raise ValueError(f"{name} must be symmetric")
    for i in range(n):
        if matrix[i, i].is_negative:
            raise ValueError(f"{name} must be positive semi-definite: diagonal entry {i} is {matrix[i, i]}")
    if not matrix.free_symbols:
        numeric = np.array([[float(c) for c in row] for row in entries], dtype=float)
        if not np.all(np.isfinite(numeric)):
            raise ValueError(f"{name} entries are too large for double precision")
        scale = max(float(np.max(np.abs(numeric))), 1e-300)
        smallest = float(np.min(np.linalg.eigvalsh(numeric / scale)))
        if smallest < -1e-12:
            # confirm exactly before refusing (rounding must not reject a singular PSD matrix)
            if n <= 4 and _exactly_psd(matrix):
                return matrix
            raise ValueError(
                f"{name} must be positive semi-definite (smallest eigenvalue {smallest * scale:.3g})"
            )
    return matrix


def _exactly_psd(matrix: sp.ImmutableMatrix) -> bool:
    """Whether every principal minor is >= 0 (Sylvester's criterion for PSD)."""
    import itertools

    n = matrix.shape[0]
    for k in range(1, n + 1):
        for idx in itertools.combinations(range(n), k):
            minor = matrix.extract(list(idx), list(idx)).det()
            if sp.N(minor, 30) < 0:
                return False
    return True


# ---------------------------------------------------------------------------
# the learning problem's parameters (LoRAModel)


def check_model_parameter(value, name, *, positive=False, nonnegative=False, integer=False):
    """A model parameter (``lr``, ``batch``, ``noise``): a number (never text) or a SymPy symbol/expression."""
    value = as_exact_number(value, name, symbolic=True, positive=positive, nonnegative=nonnegative, integer=integer)
    if isinstance(value, sp.Expr) and value.is_number:
        check_magnitude(value, name)
    return value


def exact_mu(mu, name: str = "mu") -> sp.Expr:
    """One pre-training strength (``mu`` or ``mu_perp``) as an exact SymPy number in ``[0, MU_MAX]`` (no text).

    Python numbers become exact (0.5 -> 1/2); SymPy numbers such as the
    numeric roots of ``critical_mu`` keep their precision.
    """
    mu = as_exact_number(mu, name, nonnegative=True, rationalize=False)
    if mu > MU_MAX:
        raise ValueError(f"{name} must be <= {MU_MAX:g}, got {sp.N(mu, 6)}")
    return mu


def exact_mu_perp(mu_perp, pretraining: str) -> sp.Expr:
    """``mu_perp`` (``None``: 0) as an exact number; only general pre-training has one."""
    if mu_perp is None:
        return sp.S.Zero
    if pretraining != "general":
        raise ValueError("mu_perp is only used with pretraining='general'")
    return exact_mu(mu_perp, "mu_perp")


def mu_interval(interval) -> tuple:
    """``(lo, hi)`` of pre-training strengths, exact, ``0 <= lo < hi <= MU_MAX``."""
    if isinstance(interval, (str, bytes)) or not hasattr(interval, "__len__") or len(interval) != 2:
        raise TypeError(f"interval must be a pair (lo, hi) of numbers, got {interval!r}")
    lo, hi = (as_exact_number(v, name, nonnegative=True) for v, name in zip(interval, ("interval lo", "interval hi")))
    if hi > MU_MAX:
        raise ValueError(f"interval hi must be <= {MU_MAX:g}, got {hi}")
    if not lo < hi:
        raise ValueError(f"interval must satisfy lo < hi, got {interval}")
    return lo, hi

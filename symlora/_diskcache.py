r"""On-disk cache of derived models, so that a second process derives nothing.

What is stored
    The expensive, pure results of a :class:`~symlora.LoRAModel`: its
    expectations, its ODE and its linearisation. One JSON file per result.

Key (never stale)
    The SHA-256 of: the cache format, the symlora version, a fingerprint of
    the package's own source files (so an edited checkout never reads results
    of older code), the SymPy and Python versions, the student and teacher
    expressions (``srepr``), the pre-training kind, the rank, ``η``, ``B``,
    ``Δ`` and the name of the result. The full key is stored inside the
    file too and compared on reading, so a renamed or foreign file is
    ignored.

Format (safe to read)
    Neither ``pickle`` nor ``eval`` (nor ``sympify`` of text, which is
    ``eval``): an expression is stored as a JSON tree of class names and
    arguments, and rebuilt with SymPy's invariant ``expr.func(*expr.args) ==
    expr`` (sums, products and powers with ``evaluate=False``, so factored
    forms stay factored). Only classes that are already imported subclasses of
    ``sympy.Basic`` are looked up, strings are passed to nothing but the
    ``Symbol`` constructor, and numbers are rebuilt from integers. A
    tampered file can at worst produce a wrong expression, never run code;
    the cache directory is the user's own, written only by this module.

Where
    ``$SYMLORA_CACHE_DIR`` if set (an empty value or ``off`` disables the
    cache); otherwise the platform's cache directory: ``$XDG_CACHE_HOME``
    or ``~/.cache`` on Linux, ``~/Library/Caches`` on macOS,
    ``%LOCALAPPDATA%`` on Windows, each with a ``symlora`` sub-folder. It
    is safe to delete at any time; files are written atomically.

Examples
--------
>>> import sympy as sp
>>> x = sp.Symbol("x", positive=True)
>>> expr = sp.sqrt(2) * sp.erf(x / 3) + sp.Float("0.1", 30) * x
>>> _decode(_encode(expr)) == expr
True
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

__all__ = ["cache_dir", "load", "store", "model_key", "STATS"]

#: Bump when the file layout changes.
FORMAT = 1

#: Counters of this process (read by tests and benchmarks).
STATS = {"hits": 0, "misses": 0, "writes": 0}


class _Unsupported(TypeError):
    """An object the format does not cover: it is then simply not cached."""


def cache_dir() -> Path | None:
    """The cache folder, or ``None`` when caching is switched off."""
    env = os.environ.get("SYMLORA_CACHE_DIR")
    if env is not None:
        return None if env.strip().lower() in ("", "off", "0", "none") else Path(env)
    try:
        if sys.platform == "darwin":
            base = Path.home() / "Library" / "Caches"
        elif os.name == "nt":
            base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
        else:
            base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    except (RuntimeError, KeyError):  # no home directory: run without a cache
        return None
    return base / "symlora"


_FINGERPRINT = None


def _source_fingerprint() -> str:
    # the package's own code: any edit gives new keys, so a result is never stale
    global _FINGERPRINT
    if _FINGERPRINT is None:
        digest = hashlib.sha256()
        root = Path(__file__).resolve().parent
        for path in sorted(root.rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
        _FINGERPRINT = digest.hexdigest()
    return _FINGERPRINT


def model_key(model, name) -> list:
    """The key material of result ``name`` of ``model`` (a JSON-able list)."""
    import sympy as sp

    from . import __version__

    return [
        FORMAT,
        __version__,
        _source_fingerprint(),
        sp.__version__,
        sys.version_info[:2],
        sp.srepr(model.student.expr),
        sp.srepr(model.teacher.expr),
        model.pretraining,
        model.rank,
        sp.srepr(model.lr),
        sp.srepr(model.batch),
        sp.srepr(model.noise),
        repr(name),
    ]


def _path(key) -> Path | None:
    folder = cache_dir()
    if folder is None:
        return None
    digest = hashlib.sha256(json.dumps(key).encode()).hexdigest()
    return folder / f"{digest}.json"


def load(key):
    """The stored value for ``key``, or ``None`` (missing, unreadable or foreign)."""
    path = _path(key)
    if path is None:
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("key") != json.loads(json.dumps(key)):
            raise ValueError("key mismatch")
        value = _decode(document["value"])
    except FileNotFoundError:
        STATS["misses"] += 1
        return None
    except Exception:  # noqa: BLE001 - a damaged cache file only costs a new derivation
        STATS["misses"] += 1
        return None
    STATS["hits"] += 1
    return value


def store(key, value) -> bool:
    """Write ``value`` under ``key``; False when it cannot be stored (never raises)."""
    path = _path(key)
    if path is None:
        return False
    try:
        payload = json.dumps({"key": key, "value": _encode(value)})
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f"{path.stem}.{os.getpid()}.tmp")
        temporary.write_text(payload, encoding="utf-8")
        os.replace(temporary, path)  # atomic: readers see the old file or the new one
    except (OSError, _Unsupported, RecursionError):
        return False
    STATS["writes"] += 1
    return True


# ------------------------------------------------------------------ format


def _basic_classes() -> dict:
    import sympy as sp

    found, todo = {}, [sp.Basic]
    while todo:
        cls = todo.pop()
        found.setdefault(f"{cls.__module__}.{cls.__qualname__}", cls)
        todo.extend(cls.__subclasses__())
    return found


def _encode(obj):
    import sympy as sp

    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return {"py": obj}
    if isinstance(obj, int):
        return {"int": str(obj)}
    if isinstance(obj, dict):
        return {"dict": [[_encode(k), _encode(v)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return {"list" if isinstance(obj, list) else "tuple": [_encode(v) for v in obj]}
    if isinstance(obj, sp.MatrixBase) and not isinstance(obj, sp.Basic):
        return {"matrix": [[_encode(v) for v in row] for row in obj.tolist()]}
    if isinstance(obj, sp.Basic):
        return _encode_basic(obj)
    from ._asymptotics import Linearization

    if isinstance(obj, Linearization):
        fields = ("a", "b", "tau", "lambda_plus", "lambda_minus", "jacobian", "fixed_point", "exact", "model_name",
                  "tau_q", "tau_fastest")
        return {"linearization": {name: _encode(getattr(obj, name)) for name in fields}}
    raise _Unsupported(f"cannot cache {type(obj).__name__}")


def _encode_basic(expr):
    import sympy as sp

    if isinstance(expr, sp.Integer):
        return {"I": str(expr.p)}
    if isinstance(expr, sp.Rational):
        return {"Q": [str(expr.p), str(expr.q)]}
    if isinstance(expr, sp.Float):
        sign, mantissa, exponent, bits = expr._mpf_
        return {"F": [sign, str(mantissa), exponent, bits, expr._prec]}
    if isinstance(expr, (sp.Dummy, sp.Wild, sp.core.function.AppliedUndef)):
        # identity (Dummy) or a class made at run time (undefined functions) cannot be rebuilt
        raise _Unsupported(f"cannot cache {type(expr).__name__}")
    if isinstance(expr, sp.Symbol):
        return {"S": [expr.name, dict(expr.assumptions0)]}
    cls = type(expr)
    name = f"{cls.__module__}.{cls.__qualname__}"
    if _rebuild(cls, expr.args) != expr:
        raise _Unsupported(f"{name} does not rebuild from its args")
    return {"B": [name, [_encode_basic(arg) for arg in expr.args]]}


_CLASSES = None


def _rebuild(cls, args):
    import sympy as sp

    # sums, products and powers are stored exactly as they were, canonical or
    # deliberately unevaluated (factored forms such as 2*(3*Q - 1))
    if issubclass(cls, (sp.Add, sp.Mul, sp.Pow)):
        return cls(*args, evaluate=False)
    return cls(*args)


def _decode(node):
    import sympy as sp

    global _CLASSES
    if not isinstance(node, dict) or len(node) != 1:
        raise ValueError("malformed cache entry")
    (tag, body), = node.items()
    if tag == "py":
        if body is not None and not isinstance(body, (bool, str)):
            raise ValueError("malformed cache entry")
        return body
    if tag == "int":
        return int(body)
    if tag == "dict":
        return {_decode(k): _decode(v) for k, v in body}
    if tag == "list":
        return [_decode(v) for v in body]
    if tag == "tuple":
        return tuple(_decode(v) for v in body)
    if tag == "matrix":
        return sp.Matrix([[_decode(v) for v in row] for row in body])
    if tag == "linearization":
        from ._asymptotics import Linearization

        return Linearization(**{name: _decode(value) for name, value in body.items()})
    if tag == "I":
        return sp.Integer(int(body))
    if tag == "Q":
        return sp.Rational(int(body[0]), int(body[1]))
    if tag == "F":
        sign, mantissa, exponent, bits, prec = body
        return sp.Float._new((int(sign), int(mantissa), int(exponent), int(bits)), int(prec))
    if tag == "S":
        name, assumptions = body
        if not isinstance(name, str) or not all(isinstance(v, bool) for v in assumptions.values()):
            raise ValueError("malformed symbol")
        return sp.Symbol(name, **assumptions)
    if tag == "B":
        name, args = body
        if _CLASSES is None or name not in _CLASSES:
            _CLASSES = _basic_classes()
        cls = _CLASSES[name]  # KeyError for anything that is not a SymPy class already imported
        args = [_decode(arg) for arg in args]
        if not all(isinstance(arg, sp.Basic) for arg in args):
            raise ValueError("SymPy objects take SymPy arguments only")  # no text reaches a constructor
        return _rebuild(cls, args)
    raise ValueError(f"unknown cache tag {tag!r}")

"""Pickling of immutable objects that cache derived results.

:class:`~symlora.Activation` and :class:`~symlora.LoRAModel` keep a private
``_cache`` of derived results, some of which are compiled local functions
that cannot be pickled.  Both are pure functions of the object's fields, so
a pickle carries the fields only and the cache is rebuilt lazily.
"""

from __future__ import annotations

__all__ = ["state_without_cache", "restore_with_empty_cache"]


def state_without_cache(obj) -> dict:
    """Every attribute of ``obj`` but ``_cache`` (for ``__getstate__``)."""
    return {k: v for k, v in obj.__dict__.items() if k != "_cache"}


def restore_with_empty_cache(obj, state: dict) -> None:
    """Set ``state`` on a frozen ``obj`` with an empty cache (for ``__setstate__``)."""
    for key, value in state.items():
        object.__setattr__(obj, key, value)
    object.__setattr__(obj, "_cache", {})

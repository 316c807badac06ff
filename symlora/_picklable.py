"""Pickling of immutable objects that cache derived results.

:class:`~symlora.Activation` and :class:`~symlora.LoRAModel` keep a private
``_cache`` of derived results, some of which are compiled local functions
that cannot be pickled.  Both are pure functions of the object's fields, so
a pickle carries the fields only and the cache is rebuilt lazily.
"""

from __future__ import annotations

__all__ = ["state_without_cache", "restore_with_empty_cache", "FrozenFields"]


def state_without_cache(obj) -> dict:
    """Every attribute of ``obj`` but ``_cache`` (for ``__getstate__``)."""
    return {k: v for k, v in obj.__dict__.items() if k != "_cache"}


def restore_with_empty_cache(obj, state: dict) -> None:
    """Set ``state`` on a frozen ``obj`` with an empty cache (for ``__setstate__``)."""
    for key, value in state.items():
        object.__setattr__(obj, key, value)
    object.__setattr__(obj, "_cache", {})


class FrozenFields:
    """Immutability, equality, hashing and pickling for objects defined by the attributes in ``_FIELDS``.

    Subclasses set their fields with ``object.__setattr__`` in ``__init__``
    and keep derived results in ``_cache`` (left out of pickles and of
    equality).
    """

    __module__ = "symlora"  # shown in help(LoRAModel) next to it, without the private module path

    _FIELDS: tuple = ()

    def __getstate__(self):
        return state_without_cache(self)

    def __setstate__(self, state):
        restore_with_empty_cache(self, state)

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is immutable: cannot set {name!r}")

    def __delattr__(self, name):
        raise AttributeError(f"{type(self).__name__} is immutable: cannot delete {name!r}")

    def _key(self):
        return tuple(getattr(self, name) for name in self._FIELDS)

    def __eq__(self, other):
        return type(other) is type(self) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

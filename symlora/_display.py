"""How numeric result objects show themselves: one line of text, also as LaTeX.

Result classes (integrations, escape times, SGD runs, slope fits, ODE
comparisons) hold arrays; their default dataclass ``repr`` would print every
element.  :class:`OneLineDisplay` gives them a one-line summary instead, in
the REPL (``__repr__``) and in notebooks (``_repr_latex_``).

Examples
--------
>>> class Demo(OneLineDisplay):
...     def _summary(self):
...         return "3 runs: 2 escaped, 1 censored; t_max 10"
>>> Demo()
Demo(3 runs: 2 escaped, 1 censored; t_max 10)
>>> Demo()._repr_latex_()
'$\\\\text{Demo: 3 runs: 2 escaped, 1 censored; t\\\\_max 10}$'
"""

from __future__ import annotations

__all__ = ["OneLineDisplay", "latex_text"]


def latex_text(text: str) -> str:
    """``text`` as math-mode LaTeX ``$\\text{...}$``, with LaTeX's special characters escaped."""
    for char in "\\&%$#_{}":
        text = text.replace(char, "\\" + char)
    return f"$\\text{{{text}}}$"


class OneLineDisplay:
    """Mixin: ``repr`` and ``_repr_latex_`` from a one-line ``_summary()``."""

    __slots__ = ()

    def _summary(self) -> str:  # pragma: no cover - every user defines it
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}({self._summary()})"

    def _repr_latex_(self):
        return latex_text(f"{type(self).__name__}: {self._summary()}")

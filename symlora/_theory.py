"""The theory document (``docs/theory.md``) as package data.

The document ships inside the package (``symlora/theory.md``, a link to
``docs/theory.md`` in the source tree that a wheel stores as a real file), so
that a non-editable install can copy it next to a report and link its
sections.

Examples
--------
>>> from symlora._theory import section_anchor, theory_text
>>> theory_text().startswith("# The theory behind symlora")
True
>>> section_anchor(4)
'4-linearisation-at-the-uninformative-fixed-point'
"""

from __future__ import annotations

import re
import shutil
from importlib import resources
from pathlib import Path

__all__ = ["THEORY_FILE", "theory_text", "section_anchor", "section_link", "copy_theory"]

#: Name of the document inside the package and in a report folder.
THEORY_FILE = "theory.md"


def theory_text() -> str:
    """The full text of the theory document."""
    return resources.files("symlora").joinpath(THEORY_FILE).read_text(encoding="utf-8")


def _anchor(heading: str) -> str:
    # the anchor Markdown renderers (GitHub, VS Code, pandoc's gfm) give a heading
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def section_anchor(number: int) -> str:
    """The link anchor of top-level section ``number`` (``## <number>. Title``).

    Raises
    ------
    ValueError
        If the document has no such section.
    """
    for line in theory_text().splitlines():
        match = re.match(r"## (\d+)\. ", line)
        if match and int(match.group(1)) == number:
            return _anchor(line[3:])
    raise ValueError(f"theory.md has no section {number!r}")


def section_link(number: int, label: str | None = None) -> str:
    """A Markdown link to section ``number`` of ``theory.md`` beside the linking file."""
    label = f"theory §{number}" if label is None else label
    return f"[{label}]({THEORY_FILE}#{section_anchor(number)})"


def copy_theory(folder) -> Path:
    """Copy the theory document into ``folder`` and return its new path."""
    target = Path(folder) / THEORY_FILE
    with resources.as_file(resources.files("symlora").joinpath(THEORY_FILE)) as source:
        shutil.copyfile(source, target)
    return target

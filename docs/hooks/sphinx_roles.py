"""Griffe extension for the API pages: Sphinx roles in gnnrec's docstrings rendered as code.

The docstrings cross-reference with reStructuredText roles (``:class:`RatingSplit```, ``:meth:`fit```,
``:class:`~gnnrec.data.DataFormatError```), which Markdown would show verbatim; this turns each into a code
span of the name (the last component after ``~``, as Sphinx does).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|meth|func|mod|attr|data|exc|obj|const):`(?P<tilde>~?)(?P<name>[^`]+)`")


def _code(match: re.Match[str]) -> str:
    name = match["name"]
    return f"`{name.rsplit('.', 1)[-1] if match['tilde'] else name}`"


def without_roles(text: str) -> str:
    return ROLE.sub(_code, text)


class SphinxRoles(griffe.Extension):
    def on_object(self, *, obj: griffe.Object, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = without_roles(obj.docstring.value)

"""From a result to what its report says: one :func:`document` per result type.

Each module of :mod:`.contents` registers the builder of one result type
(``@document.register``); the renderers lay any :class:`~.document.Document` out in every
format. A new analysis adds one content module; a new format one renderer.
"""

from __future__ import annotations

from functools import singledispatch

from ..errors import InvalidArgumentError
from .document import Document, Style


@singledispatch
def document(result: object, style: Style) -> Document:
    """The report's content for ``result`` in ``style``."""
    raise InvalidArgumentError(
        f"symtrans has no report for a {type(result).__name__}; reports exist for "
        f"{', '.join(sorted(t.__name__ for t in document.registry if t is not object))}"
    )

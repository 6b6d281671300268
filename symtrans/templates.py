"""Where the templates are, and the jinja2 environment that reads them.

``templates/`` at the top of the repository is the source; the wheel carries it as
``symtrans/templates`` (pyproject force-includes it). Delimiters are LaTeX-safe
(``\\VAR{...}``, ``\\BLOCK{...}``, ``\\#{...}``) and undefined variables are errors.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import jinja2

from .errors import TemplateError


def template_dir() -> Path:
    """``symtrans/templates`` in an installed wheel, the repository's ``templates/`` otherwise."""
    packaged = Path(str(resources.files("symtrans"))) / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "templates"


def environment(
    folder: str | os.PathLike[str] | None = None, html: bool = False
) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder or template_dir())),
        block_start_string=r"\BLOCK{",
        block_end_string="}",
        variable_start_string=r"\VAR{",
        variable_end_string="}",
        comment_start_string=r"\#{",
        comment_end_string="}",
        undefined=jinja2.StrictUndefined,
        # HTML escapes every value unless it is marked safe; other formats escape per format.
        autoescape=html,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(
    name: str, context: Mapping[str, object], folder: str | os.PathLike[str] | None = None
) -> str:
    """Render template ``name`` with ``context``; a missing variable or template is a
    :class:`SymtransError` that names it."""
    try:
        env = environment(folder, html=name.endswith(".html"))
        return env.get_template(name).render(**context)
    except jinja2.UndefinedError as exc:
        raise TemplateError(
            f"template {name!r} uses a variable symtrans does not provide ({exc.message}); "
            "fix the template or use the shipped one"
        ) from None
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(
            f"no template {exc.name!r} in {folder or template_dir()}; give a folder that holds "
            f"{name}"
        ) from None

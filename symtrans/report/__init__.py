"""Reports of every result: one pipeline from a result to Markdown, LaTeX (fragment or
standalone), PDF and HTML.

A result becomes a :class:`~.document.Document` (what the report says, :mod:`.registry` and
:mod:`.contents`), which one renderer per format lays out (:mod:`.markdown`, :mod:`.latex`,
:mod:`.html`, :mod:`.typst`; :mod:`.pdf` compiles the LaTeX, or the Typst where no LaTeX is
installed). Every file is written atomically, pictures included, so a failure never leaves a
half-written report.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import InvalidArgumentError, SymtransError
from . import contents  # noqa: F401  (registers every result type's document)
from .document import Document, Style
from .registry import document

FORMATS = ("md", "tex", "pdf", "html")
# Line budgets (in rough characters) for the displayed sums: a standalone article's text
# width, a fragment that must fit one column of a two-column paper (IEEEtran), and the
# Markdown/HTML page.
STANDALONE_WIDTH = 66.0
COLUMN_WIDTH = 36.0
PAGE_WIDTH = 60.0

Templates = str | os.PathLike[str] | None

__all__ = [
    "FORMATS",
    "Document",
    "Style",
    "document",
    "notebook_html",
    "notebook_latex",
    "notebook_markdown",
    "render",
    "save",
    "suffix_format",
    "write_atomic",
    "write_sty",
]


def style_for(fmt: str, top_k: int = 12) -> Style:
    """How a document is built for ``fmt`` (``fragment``: a LaTeX fragment for a column)."""
    if fmt == "fragment":
        return Style(width=COLUMN_WIDTH, top_k=top_k, narrow=True)
    if fmt in ("tex", "pdf"):
        return Style(width=STANDALONE_WIDTH, top_k=top_k)
    if fmt in ("md", "html", "notebook"):
        return Style(width=PAGE_WIDTH, top_k=top_k)
    raise InvalidArgumentError(f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}")


def render(
    result: object,
    fmt: str,
    *,
    top_k: int = 12,
    templates: Templates = None,
    figure_stem: str | None = None,
    heading: str | None = None,
    engine: str = "auto",
) -> str | bytes:
    """``result``'s report in ``fmt`` (``md``, ``tex``, ``fragment``, ``pdf``, ``html``).
    Markdown pictures are written only by :func:`save` (``figure_stem``). ``heading``: the
    sectioning command a fragment's headings use (``"subsection*"``; default: run-in bold
    lines, no sectioning). ``engine``: what makes a PDF (:func:`.pdf.pdf_engine`)."""
    return _render(
        result,
        fmt,
        top_k=top_k,
        templates=templates,
        figure_stem=figure_stem,
        heading=heading,
        engine=engine,
    )[0]


def _render(
    result: object,
    fmt: str,
    *,
    top_k: int,
    templates: Templates,
    figure_stem: str | None,
    heading: str | None = None,
    engine: str = "auto",
) -> tuple[str | bytes, list[tuple[str, str]]]:
    """The document in ``fmt`` and the side files it refers to ([(name, svg)])."""
    doc = document(result, style_for(fmt, top_k))
    if fmt == "pdf":
        from .pdf import compile_pdf, compile_typst, pdf_engine

        chosen = pdf_engine(engine)
        if chosen == "typst":
            from .typst import typst

            return compile_typst(*typst(doc, templates)), []
        from .latex import latex

        return compile_pdf(latex(doc, standalone=True, template_folder=templates), chosen), []
    if fmt in ("tex", "fragment"):
        from .latex import latex

        return latex(doc, fmt == "tex", templates, heading=heading), []
    if fmt == "html":
        from .html import html

        return html(doc, templates), []
    from .markdown import markdown

    if figure_stem is None:
        return markdown(doc, None, templates), []
    from .figures import svg

    side = {f.name: (f"{figure_stem}.{f.name}.svg", svg(f.picture)) for f in doc.figures()}
    text = markdown(doc, {name: path for name, (path, _) in side.items()}, templates)
    return text, list(side.values())


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write through a temporary file in the same folder and a rename: a reader sees the old
    file or the new one, never half of one, and a failure leaves the old file untouched."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a report is an ordinary file
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def suffix_format(path: str | os.PathLike[str]) -> tuple[Path, str]:
    """``(path, format)`` from the suffix, or :class:`InvalidArgumentError` for one that is
    not a report format."""
    target = Path(path)
    fmt = target.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise InvalidArgumentError(
            f"cannot write {str(target)!r}: the suffix {target.suffix or '(none)'!r} is not a "
            f"report format; use one of {', '.join('.' + f for f in FORMATS)}"
        )
    return target, fmt


def save(
    result: object,
    path: str | os.PathLike[str],
    *,
    top_k: int = 12,
    templates: Templates = None,
    engine: str = "auto",
) -> str:
    """Write ``result``'s report in the format its suffix names (.md .tex .pdf .html):
    the pictures beside it first (Markdown: ``<stem>.<picture>.svg``), then the document,
    each atomically. A PDF is compiled by ``engine`` (:func:`.pdf.pdf_engine`: LaTeX where
    it is installed, else Typst)."""
    target, fmt = suffix_format(path)  # a bad suffix is refused before any work
    document_, side_files = _render(
        result, fmt, top_k=top_k, templates=templates, figure_stem=target.stem, engine=engine
    )
    try:
        for name, svg in side_files:
            write_atomic(target.parent / name, svg)
        write_atomic(target, document_)
    except OSError as exc:
        raise SymtransError(
            f"cannot write {str(target)!r}: {exc.strerror or exc}; choose a writable folder"
        ) from None
    return str(target)


def notebook_html(result: object) -> str:
    """The HTML report's body with its (scoped) style, for a notebook cell."""
    from .html import body_html

    return body_html(str(render(result, "html")))


def notebook_markdown(result: object) -> str:
    """The Markdown report for a notebook cell (no pictures: the HTML form has them)."""
    from .markdown import markdown

    return markdown(document(result, style_for("notebook")))


def notebook_latex(result: object) -> str:
    """The report as LaTeX for a document that loads only amsmath and longtable: what
    nbconvert puts in a notebook's PDF (math over several lines, tables that break across
    pages)."""
    from .latex import bare_latex

    return bare_latex(document(result, style_for("notebook")))


def write_sty(folder: str | os.PathLike[str] = ".") -> str:
    """Copy ``symtrans.sty`` (the notation macros a fragment needs) into ``folder``."""
    from ..printing.notation import sty_path

    target = Path(folder) / "symtrans.sty"
    try:
        write_atomic(target, sty_path().read_bytes())
    except OSError as exc:
        raise SymtransError(f"cannot write {str(target)!r}: {exc.strerror or exc}") from None
    return str(target)

"""Reports of a decomposition: Markdown, LaTeX (fragment or standalone), PDF and HTML.

The content (:mod:`.content`) is built once and laid out per format; every file is written
atomically, figures included, so a failure never leaves a half-written report.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InvalidArgumentError, SymtransError
from .content import ReportContent, build

if TYPE_CHECKING:
    from ..decomposition import Decomposition

FORMATS = ("md", "tex", "pdf", "html")
# Line budgets (in rough characters) for the displayed sums: a standalone article's text
# width, and a fragment that must fit one column of a two-column paper (IEEEtran).
STANDALONE_WIDTH = 66.0
COLUMN_WIDTH = 36.0

__all__ = [
    "FORMATS",
    "ReportContent",
    "build",
    "render_format",
    "save_report",
    "write_atomic",
    "write_sty",
]


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


def _figures_svg(content: ReportContent) -> list[tuple[str, str, str]]:
    """(suffix, caption, svg) for each picture of the report."""
    from .figures import heatmap_svg, waterfall_svg

    out = [
        (
            "waterfall",
            "Waterfall: each term moves the running sum to the total.",
            waterfall_svg(content.bars, "contributions, largest first"),
        )
    ]
    if content.heatmap is not None:
        out.append(
            (
                "heads",
                "Contribution of each head (layer × head).",
                heatmap_svg(content.heatmap, "head contributions"),
            )
        )
    return out


def render_format(
    d: Decomposition,
    fmt: str,
    *,
    top_k: int = 12,
    template_folder: str | os.PathLike[str] | None = None,
    figure_stem: str | None = None,
) -> tuple[str | bytes, list[tuple[str, str]]]:
    """The document in ``fmt`` and the side files it refers to ([(name, svg)])."""
    from .html import html
    from .latex import latex
    from .markdown import FigureRef, markdown
    from .pdf import compile_pdf

    if fmt in ("tex", "pdf"):
        content = build(d, top_k=top_k, use_macros=True, budget=STANDALONE_WIDTH)
        tex = latex(content, standalone=True, template_folder=template_folder)
        return (tex if fmt == "tex" else compile_pdf(tex)), []
    content = build(d, top_k=top_k, use_macros=False, budget=60.0)
    if fmt == "html":
        figures = tuple((caption, _strip_xml(svg)) for _, caption, svg in _figures_svg(content))
        return html(content, figures, template_folder), []
    if fmt == "md":
        if figure_stem is None:
            return markdown(content, (), template_folder), []
        side = [
            (f"{figure_stem}.{suffix}.svg", caption, svg)
            for suffix, caption, svg in _figures_svg(content)
        ]
        refs = tuple(FigureRef(caption, name) for name, caption, _ in side)
        return markdown(content, refs, template_folder), [(name, svg) for name, _, svg in side]
    raise InvalidArgumentError(f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}")


def write_sty(folder: str | os.PathLike[str] = ".") -> str:
    """Copy ``symtrans.sty`` (the notation macros a fragment needs) into ``folder``."""
    from ..printing.notation import sty_path

    target = Path(folder) / "symtrans.sty"
    try:
        write_atomic(target, sty_path().read_bytes())
    except OSError as exc:
        raise SymtransError(f"cannot write {str(target)!r}: {exc.strerror or exc}") from None
    return str(target)


def _strip_xml(svg: str) -> str:
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg


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


def write_document(target: Path, document: str | bytes, side_files: list[tuple[str, str]]) -> str:
    """The side files (pictures) beside ``target``, then the document, each atomically."""
    try:
        for name, svg in side_files:
            write_atomic(target.parent / name, svg)
        write_atomic(target, document)
    except OSError as exc:
        raise SymtransError(
            f"cannot write {str(target)!r}: {exc.strerror or exc}; choose a writable folder"
        ) from None
    return str(target)


def save_report(
    d: Decomposition,
    path: str | os.PathLike[str],
    *,
    top_k: int = 12,
    template_folder: str | os.PathLike[str] | None = None,
) -> str:
    """Write the report in the format its suffix names (.md .tex .pdf .html). Markdown
    pictures go beside it as ``<stem>.<picture>.svg``."""
    target, fmt = suffix_format(path)
    document, side_files = render_format(
        d, fmt, top_k=top_k, template_folder=template_folder, figure_stem=target.stem
    )
    return write_document(target, document, side_files)

"""What every result offers beyond its data: a check and a report, each one late call into
the layer that does the work (:mod:`symtrans.verify`, :mod:`symtrans.report`). Nothing here
computes; results stay plain data."""

from __future__ import annotations

import os
from typing import TypeVar

from .claims import Claim

R = TypeVar("R", bound="Result")
Templates = str | os.PathLike[str] | None


class Result:
    """A result lists its :meth:`claims`; ``verify`` checks them, ``to_*`` and ``save`` render
    it through the one report pipeline (``top_k``: rows of its largest-first tables;
    ``templates``: a folder of the user's own templates used instead of the shipped ones)."""

    def claims(self) -> tuple[Claim, ...]:
        """The equalities this result asserts (see :class:`~.claims.Claim`)."""
        raise NotImplementedError

    def verify(self: R, atol: float | None = None, reference: str | None = None) -> R:
        """Return ``self`` if every claim holds within ``atol`` (default: the documented
        tolerance of the model's dtype and norm), else raise
        :class:`~symtrans.errors.IdentityError` naming the worst one and its likely cause.

        ``reference="hf"`` also checks the model's own logit against Hugging Face's forward
        pass of the original model, loaded afresh from where the wrapped model came from: for
        a model passed in rather than loaded by :func:`symtrans.load_model` (which checks it
        at load)."""
        from ..verify import verify

        extra: tuple[Claim, ...] = ()
        if reference is not None:
            from ..analyses.reference import reference_claims

            extra = reference_claims(self, reference)
        return verify(self, atol, extra)

    def to_markdown(self, top_k: int = 12, templates: Templates = None) -> str:
        """The report as Markdown (math for KaTeX and MathJax; pictures only through save)."""
        from ..report import render

        return str(render(self, "md", top_k=top_k, templates=templates))

    def to_latex(
        self,
        standalone: bool = False,
        top_k: int = 12,
        templates: Templates = None,
        heading: str | None = None,
    ) -> str:
        """A fragment to ``\\input`` after ``\\usepackage{symtrans}`` (see
        :func:`symtrans.write_sty`), or a compilable document with ``standalone=True``.
        ``heading``: the sectioning command of the fragment's headings (``"subsection*"``);
        by default they are run-in bold lines and the fragment adds no sectioning."""
        from ..report import render

        fmt = "tex" if standalone else "fragment"
        return str(render(self, fmt, top_k=top_k, templates=templates, heading=heading))

    def to_html(self, top_k: int = 12, templates: Templates = None) -> str:
        """A self-contained HTML page (MathML, inline SVG, no script)."""
        from ..report import render

        return str(render(self, "html", top_k=top_k, templates=templates))

    def save(
        self,
        path: str | os.PathLike[str],
        top_k: int = 12,
        templates: Templates = None,
        engine: str = "auto",
    ) -> str:
        """Write the report in the format its suffix names (``.md .tex .pdf .html``),
        atomically; Markdown pictures go beside it as ``<stem>.<picture>.svg``. A PDF is made
        by ``engine``: ``"auto"`` (LaTeX where installed, else Typst), ``"pdflatex"``,
        ``"lualatex"``, ``"xelatex"`` or ``"typst"``."""
        from ..report import save

        return save(self, path, top_k=top_k, templates=templates, engine=engine)

    # -- notebooks: the same report as HTML (shown), Markdown and LaTeX (nbconvert's PDF) ----
    def _repr_markdown_(self) -> str:
        from ..report import notebook_markdown

        return notebook_markdown(self)

    def _repr_html_(self) -> str:
        from ..report import notebook_html

        return notebook_html(self)

    def _repr_latex_(self) -> str:
        from ..report import notebook_latex

        return notebook_latex(self)

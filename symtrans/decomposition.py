"""The results: a decomposition of one logit, and of a batch of them.

They hold plain numbers (numpy, float64) and typed labels, never tensors, so rendering never
touches torch. ``d.total`` is ``Σ_i term_i + constant``; ``d.verify()`` checks it against
``d.model_logit``, the model's own number.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import sympy

from . import expression as ex
from .errors import InvalidArgumentError
from .labels import Label
from .norm import NormKind
from .verify import Check, default_tolerance, require

if TYPE_CHECKING:
    from torch import Tensor

    from .labels import HeadOut
    from .projection import Projection


@dataclass(frozen=True)
class ModelInfo:
    """What a report says about the model, and what the identity's symbols stand for."""

    name: str
    architecture: str
    n_layers: int
    n_heads: int
    d_model: int
    d_mlp: int
    norm: NormKind
    eps: float
    has_gamma: bool
    has_beta: bool
    dtype: str


@dataclass(frozen=True)
class Term:
    """One term of the sum: its typed label, its contribution to the logit, its symbol
    (built on first use: a split of 36,864 neurons makes its terms without building 36,864
    sympy nodes)."""

    label: Label
    value: float
    position: int = field(repr=False)
    token: str = field(repr=False)

    @cached_property
    def node(self) -> sympy.Expr:
        return ex.term_node(self.label, self.position, self.token)

    @property
    def name(self) -> str:
        """The TransformerLens-style label (``L1H2``, ``0_mlp_out``, ...)."""
        return str(self.label)

    @property
    def latex(self) -> str:
        from .printing.latex import latex

        return latex(self.node)


@dataclass(frozen=True, eq=False)
class Decomposition:
    """The exact decomposition of one logit (or logit difference) at one position."""

    model: ModelInfo
    prompt: str
    tokens: tuple[int, ...]
    token_strings: tuple[str, ...]
    position: int  # non-negative index into tokens
    answer: str
    vs: str | None
    split: str
    labels: tuple[Label, ...]
    values: np.ndarray  # [terms], float64 contributions
    beta_term: float  # <β, u>
    unembed_bias: float  # b_U[answer] (- b_U[vs])
    scale: float  # σ(x^L_p), the frozen scale
    model_logit: float

    # -- numbers ---------------------------------------------------------------------------
    @property
    def constant(self) -> float:
        """``<β, u> + b_U``: the part of the logit no residual term carries (``bias``)."""
        return self.beta_term + self.unembed_bias

    @cached_property
    def terms(self) -> tuple[Term, ...]:
        token = self.token_strings[self.position]
        return tuple(
            Term(label, v, self.position, token)
            for label, v in zip(self.labels, self.values.tolist(), strict=True)
        )

    @property
    def total(self) -> float:
        return float(np.sum(self.values) + self.constant)

    @property
    def magnitude(self) -> float:
        """``Σ|terms| + |constant|``: the size rounding errors scale with."""
        return float(np.sum(np.abs(self.values)) + abs(self.constant))

    @property
    def tolerance(self) -> float:
        """The default tolerance of :meth:`verify` (see :mod:`symtrans.verify`)."""
        return default_tolerance(self.model.dtype, self.model.norm, self.magnitude)

    def check(self, atol: float | None = None) -> Check:
        if atol is not None and not (isinstance(atol, (int, float)) and 0 <= atol < float("inf")):
            raise InvalidArgumentError(
                f"atol is an absolute tolerance: a finite number >= 0, got {atol!r}; leave it "
                "out for the documented default of the model's dtype and norm"
            )
        tol = self.tolerance if atol is None else float(atol)
        return Check(total=self.total, model_logit=self.model_logit, tolerance=tol)

    def verify(self, atol: float | None = None) -> Decomposition:
        """Return ``self`` if the terms add up to the model's logit, else raise
        :class:`~symtrans.errors.IdentityError` with both numbers and the likely cause."""
        require(
            self.check(atol),
            prompt=self.prompt,
            position=self.position,
            direction=self.direction,
            dtype=self.model.dtype,
            kind=self.model.norm,
            magnitude=self.magnitude,
        )
        return self

    @property
    def direction(self) -> str:
        return repr(self.answer) if self.vs is None else f"{self.answer!r} - {self.vs!r}"

    def top(self, k: int) -> list[Term]:
        """The ``k`` terms of largest |contribution|, largest first."""
        order = np.argsort(-np.abs(self.values), kind="stable")[:k]
        token = self.token_strings[self.position]
        return [Term(self.labels[i], float(self.values[i]), self.position, token) for i in order]

    # -- analyses (each checked against the model in tests/) ---------------------------------
    def ablate(self, labels: Any, renormalize: bool = False, model: Any = None) -> float:
        """The exact logit with the terms ``labels`` removed from ``x^L_p``: with the scale
        frozen (``renormalize=False``) or recomputed from what is left (needs ``model``)."""
        from .ablation import ablate

        return ablate(self, labels, renormalize=renormalize, model=model)

    def expand_head(self, model: Any, head: Any, depth: int = 2) -> Any:
        """A head's term split into exact paths through its value input (see
        :func:`symtrans.expand_head`)."""
        from .paths import expand_head

        return expand_head(model, self, head, depth=depth)

    def effective_embedding(self, model: Any, attention: bool = True) -> Decomposition:
        """The same logit with ``embed`` replaced by the effective embedding ``W_EE[t_p]`` and
        block 0's terms by what they add beyond the token on its own (see
        :mod:`symtrans.effective`)."""
        from .effective import effective_decomposition

        return effective_decomposition(model, self, attention=attention)

    def project(
        self,
        model: Any,
        head: HeadOut | str,
        onto: str | Tensor = "source",
        only_negative: bool = False,
    ) -> Projection:
        """A head's term split parallel/perpendicular to the unembedding of what it attends
        to, with the logit and loss of keeping only either part (see :func:`symtrans.project`)."""
        from .projection import project

        return project(model, self, head, onto=onto, only_negative=only_negative)

    # -- symbols ---------------------------------------------------------------------------
    @cached_property
    def term_groups(self) -> list[ex.TermGroup]:
        """The symbolic terms (neurons and source positions folded into sums)."""
        return ex.term_groups(
            self.labels, self.position, self.token_strings[self.position], self.model.n_heads
        )

    @property
    def symbolic_terms(self) -> list[sympy.Expr]:
        return [g.node for g in self.term_groups]

    @cached_property
    def expression(self) -> sympy.Equality:
        """``logit = √N λ Σ_i <γ⊙u, c(t_i)> + <β, u> + b_U`` as a sympy equation."""
        return ex.logit_equation(
            self.symbolic_terms,
            self.answer,
            self.vs,
            self.position,
            self.model.norm,
            self.model.has_gamma,
            self.model.has_beta,
        )

    @cached_property
    def residual_expression(self) -> sympy.Equality:
        """``x^L_p = Σ_i t_i``."""
        return ex.residual_equation(self.symbolic_terms, self.model.n_layers, self.position)

    @cached_property
    def scale_expression(self) -> sympy.Equality:
        """``λ = 1/sqrt(|c(x^L_p)|² + Nε)``; the numeric ``λ`` is ``1/(√N σ)``."""
        return ex.scale_equation(self.model.norm, self.model.n_layers, self.position)

    # -- rendering -------------------------------------------------------------------------
    # ``templates``: a folder of the user's own templates (report.md, report.tex,
    # fragment.tex, report.html) used instead of the shipped ones.
    def to_markdown(self, top_k: int = 12, templates: str | os.PathLike[str] | None = None) -> str:
        """The report as Markdown (math for KaTeX and MathJax; no pictures: see ``save``)."""
        from .report import render_format

        return str(render_format(self, "md", top_k=top_k, template_folder=templates)[0])

    def to_latex(
        self,
        standalone: bool = False,
        top_k: int = 12,
        templates: str | os.PathLike[str] | None = None,
    ) -> str:
        """A fragment to ``\\input`` after ``\\usepackage{symtrans}`` (see
        :func:`symtrans.write_sty`), or a compilable document with ``standalone=True``."""
        from .report import COLUMN_WIDTH, STANDALONE_WIDTH, build
        from .report.latex import latex as render_latex

        width = STANDALONE_WIDTH if standalone else COLUMN_WIDTH
        content = build(self, top_k=top_k, use_macros=True, budget=width)
        return render_latex(content, standalone=standalone, template_folder=templates)

    def to_html(self, top_k: int = 12, templates: str | os.PathLike[str] | None = None) -> str:
        """A self-contained HTML page (MathML, inline SVG)."""
        from .report import render_format

        return str(render_format(self, "html", top_k=top_k, template_folder=templates)[0])

    def save(
        self,
        path: str | os.PathLike[str],
        top_k: int = 12,
        templates: str | os.PathLike[str] | None = None,
    ) -> str:
        """Write the report in the format its suffix names: ``.md`` ``.tex`` ``.pdf``
        ``.html``. Atomic: an existing file is replaced whole or left untouched."""
        from .report import save_report

        return save_report(self, path, top_k=top_k, template_folder=templates)

    # -- notebooks ---------------------------------------------------------------------------
    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def _repr_html_(self) -> str:
        from .report.html import body_html

        return body_html(self.to_html())

    def _repr_latex_(self) -> str:
        from .printing.latex import latex

        return "$$" + latex(self.expression) + "$$"

    def __repr__(self) -> str:
        return (
            f"Decomposition({self.prompt!r}, answer={self.answer!r}, vs={self.vs!r}, "
            f"split={self.split!r}, terms={len(self.labels)}, total={self.total:.6g}, "
            f"model_logit={self.model_logit:.6g})"
        )


@dataclass(frozen=True, eq=False)
class BatchDecomposition(Sequence[Decomposition]):
    """Decompositions of many prompts with the same labels: ``values`` is ``[batch, terms]``."""

    items: tuple[Decomposition, ...]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: Any) -> Any:
        return self.items[index]

    def __iter__(self) -> Iterator[Decomposition]:
        return iter(self.items)

    @property
    def labels(self) -> tuple[Label, ...]:
        return self.items[0].labels

    @cached_property
    def values(self) -> np.ndarray:
        return np.stack([d.values for d in self.items])

    @property
    def constants(self) -> np.ndarray:
        return np.array([d.constant for d in self.items])

    @property
    def totals(self) -> np.ndarray:
        return np.array([d.total for d in self.items])

    @property
    def model_logits(self) -> np.ndarray:
        return np.array([d.model_logit for d in self.items])

    def verify(self, atol: float | None = None) -> BatchDecomposition:
        for d in self.items:
            d.verify(atol)
        return self

    def __repr__(self) -> str:
        return f"BatchDecomposition({len(self.items)} prompts, {len(self.labels)} terms)"

"""The decomposition of one logit, and of a batch of them.

They hold plain numbers (numpy, float64) and typed labels, never tensors, so rendering never
touches torch. ``d.total`` is ``Σ_i term_i + constant``; ``d.verify()`` checks it against
``d.model_logit``, the model's own number.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import sympy

from .. import expression as ex
from ..labels import HeadOut, Label
from .base import Result
from .claims import Claim
from .model import ModelInfo

if TYPE_CHECKING:
    import pandas as pd
    from torch import Tensor

    from ..verify import Check
    from .paths import PathExpansion
    from .projection import Projection


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
        from ..printing.latex import latex

        return latex(self.node)


@dataclass(frozen=True, eq=False)
class Decomposition(Result):
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
    model_logit: float  # the model's own logit (difference), before any soft-cap
    softcap: float | None = None  # the model outputs cap · tanh(logit / cap) (Gemma 2/3)
    model_output: float | None = None  # what the model outputs (after the cap), if known
    # The size of the model's own rounding of this logit, in units of its dtype's epsilon
    # (symtrans.trace.evaluate.rounding_scale): the tolerance of a low-precision model.
    rounding: float | None = None

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
    def direction(self) -> str:
        return repr(self.answer) if self.vs is None else f"{self.answer!r} - {self.vs!r}"

    def top(self, k: int) -> list[Term]:
        """The ``k`` terms of largest |contribution|, largest first."""
        order = np.argsort(-np.abs(self.values), kind="stable")[:k]
        token = self.token_strings[self.position]
        return [Term(self.labels[i], float(self.values[i]), self.position, token) for i in order]

    @property
    def capped_total(self) -> float | None:
        """The soft-cap applied to the sum, ``cap · tanh(total / cap)`` (one answer, no
        ``vs``: a capped difference is not a function of the difference)."""
        if self.softcap is None or self.vs is not None:
            return None
        return float(self.softcap * np.tanh(self.total / self.softcap))

    def to_pandas(self) -> pd.DataFrame:
        """A tidy frame: one row per term and one for the constant (``bias``), columns
        ``prompt, answer, vs, position, term, kind, layer, head, neuron, source, value``
        (see :mod:`symtrans.results.frames`; needs the ``symtrans[data]`` extra)."""
        from .frames import decomposition_frame

        return decomposition_frame(self)

    # -- the check -------------------------------------------------------------------------
    def claims(self) -> tuple[Claim, ...]:
        subject = f"prompt {self.prompt!r} at position {self.position}, direction {self.direction}"
        claims = [
            Claim(
                subject=subject,
                what="the terms",
                value=self.total,
                against="the model's logit" + (" before its soft-cap" if self.softcap else ""),
                reference=self.model_logit,
                magnitude=self.magnitude,
                dtype=self.model.dtype,
                norm=self.model.norm,
                float32_norms=self.model.float32_norms,
                rounding=self.rounding,
            )
        ]
        capped = self.capped_total
        if capped is not None and self.model_output is not None:
            claims.append(
                Claim(
                    subject=subject,
                    what="the soft-capped sum",
                    value=capped,
                    against="the model's output",
                    reference=self.model_output,
                    magnitude=self.magnitude,
                    dtype=self.model.dtype,
                    norm=self.model.norm,
                    float32_norms=self.model.float32_norms,
                )
            )
        return tuple(claims)

    @property
    def tolerance(self) -> float:
        """The default tolerance of :meth:`verify` (see :mod:`symtrans.verify`)."""
        from ..verify import tolerance

        return tolerance(self.claims()[0])

    def check(self, atol: float | None = None) -> Check:
        """The verification line: sum, model, difference, tolerance, pass/fail."""
        from ..verify import check

        return check(self.claims()[0], atol)

    # -- analyses (each checked against the model in tests/) ---------------------------------
    def ablate(self, labels: Any, renormalize: bool = False, model: Any = None) -> float:
        """The exact logit with the terms ``labels`` removed from ``x^L_p``: with the scale
        frozen (``renormalize=False``) or recomputed from what is left (needs ``model``)."""
        from ..analyses.ablation import ablate

        return ablate(self, labels, renormalize=renormalize, model=model)

    def expand_head(self, model: Any, head: HeadOut | str, depth: int = 2) -> PathExpansion:
        """A head's term split into exact paths through its value input (see
        :func:`symtrans.expand_head`)."""
        from ..analyses.paths import expand_head

        return expand_head(model, self, head, depth=depth)

    def effective_embedding(self, model: Any, attention: bool = True) -> Decomposition:
        """The same logit with ``embed`` replaced by the effective embedding ``W_EE[t_p]`` and
        block 0's terms by what they add beyond the token on its own (see
        :mod:`symtrans.analyses.effective`)."""
        from ..analyses.effective import effective_decomposition

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
        from ..analyses.projection import project

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

    def __repr__(self) -> str:
        return (
            f"Decomposition({self.prompt!r}, answer={self.answer!r}, vs={self.vs!r}, "
            f"split={self.split!r}, terms={len(self.labels)}, total={self.total:.6g}, "
            f"model_logit={self.model_logit:.6g})"
        )


@dataclass(frozen=True, eq=False)
class BatchDecomposition(Result, Sequence[Decomposition]):
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

    def to_pandas(self) -> pd.DataFrame:
        """A tidy frame: one row per prompt and term (and each prompt's constant, ``bias``);
        see :meth:`Decomposition.to_pandas`."""
        from .frames import batch_frame

        return batch_frame(self)

    def claims(self) -> tuple[Claim, ...]:
        return tuple(claim for d in self.items for claim in d.claims())

    def __repr__(self) -> str:
        return f"BatchDecomposition({len(self.items)} prompts, {len(self.labels)} terms)"

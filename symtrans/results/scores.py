"""An attention score as an exact sum over (query term, key term) pairs (built by
:func:`symtrans.attention_scores`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import labels as lb
from ..errors import InvalidArgumentError
from ..kinds import NormKind
from .base import Result
from .claims import Claim

SCORE_ATOL = 1e-10  # float64 LayerNorm models


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """``<a, b> / (|a| |b|)`` of two vectors (``nan`` if one is zero)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    denominator = float(np.linalg.norm(x) * np.linalg.norm(y))
    return float(x @ y) / denominator if denominator > 0 else float("nan")


@dataclass(frozen=True, eq=False)
class ScoreDecomposition(Result):
    """The score of head ``(layer, head)`` from query position ``query_pos`` to key position
    ``key_pos``: ``values[i, j] = <query_pieces[i], key_pieces[j]> / attn_scale``."""

    layer: int
    head: int
    query_pos: int
    key_pos: int
    query_labels: tuple[lb.ScoreNode, ...]
    key_labels: tuple[lb.ScoreNode, ...]
    query_pieces: np.ndarray  # [n_query_terms, d_head], rotated
    key_pieces: np.ndarray  # [n_key_terms, d_head], rotated
    attn_scale: float
    values: np.ndarray  # [n_query_terms, n_key_terms]
    model_score: float  # blocks.{layer}.attn.hook_attn_scores[head, query_pos, key_pos]
    token_strings: tuple[str, ...] = ()
    softcap: float | None = None  # the model's score is cap · tanh(sum / cap) (Gemma 2)
    dtype: str = "float64"  # the model's
    norm: NormKind = NormKind.LAYER
    float32_norms: bool = (
        False  # Hugging Face computes the norms in float32  # the model's first norms
    )

    @property
    def total(self) -> float:
        return float(self.values.sum())

    @property
    def capped_total(self) -> float:
        """The sum as the model's score: with its soft-cap applied where the model caps."""
        if self.softcap is None:
            return self.total
        return float(self.softcap * np.tanh(self.total / self.softcap))

    @property
    def error(self) -> float:
        return self.capped_total - self.model_score

    def claims(self) -> tuple[Claim, ...]:
        capped = " through the soft-cap" if self.softcap is not None else ""
        return (
            Claim(
                subject=f"L{self.layer}H{self.head}'s score {self.query_pos}→{self.key_pos}",
                what=f"the {self.values.size} pieces{capped}",
                value=self.capped_total,
                against="the model's score (hook_attn_scores)",
                reference=self.model_score,
                magnitude=float(np.abs(self.values).sum()),
                dtype=self.dtype,
                norm=self.norm,
                float32_norms=self.float32_norms,
                floor=SCORE_ATOL,
            ),
        )

    @property
    def tolerance(self) -> float:
        """The default tolerance of :meth:`verify`: ``SCORE_ATOL``, or the documented one of
        the model's dtype and norm (:mod:`symtrans.verify`) where that is larger."""
        from ..verify import tolerance

        return tolerance(self.claims()[0])

    def value(self, query: lb.ScoreNode | str, key: lb.ScoreNode | str) -> float:
        """The ``(query term, key term)`` piece of the score."""
        return float(
            self.values[
                self._index(self.query_labels, query, "query"),
                self._index(self.key_labels, key, "key"),
            ]
        )

    def cosine(self, query: lb.ScoreNode | str, key: lb.ScoreNode | str) -> float:
        """Cosine similarity of a query piece and a key piece, where the score is taken (after
        rotary), e.g. ``cosine(QueryBias(l, h), lb.Embed())`` with ``key_pos=0``: seed 000's
        "BOS key against the query bias"."""
        a = self.query_pieces[self._index(self.query_labels, query, "query")]
        b = self.key_pieces[self._index(self.key_labels, key, "key")]
        return cosine(a, b)

    def top(self, k: int) -> list[tuple[lb.ScoreNode, lb.ScoreNode, float]]:
        """The ``k`` pairs of largest ``|value|``, largest first."""
        flat = np.argsort(-np.abs(self.values), axis=None, kind="stable")[:k]
        rows, cols = np.unravel_index(flat, self.values.shape)
        return [
            (self.query_labels[i], self.key_labels[j], float(self.values[i, j]))
            for i, j in zip(rows, cols, strict=True)
        ]

    @staticmethod
    def _index(labels: tuple[lb.ScoreNode, ...], label: lb.ScoreNode | str, side: str) -> int:
        for i, known in enumerate(labels):
            if known == label or str(known) == label:
                return i
        raise InvalidArgumentError(
            f"{label!r} is not a {side} term of this score; the {side} terms are "
            f"{', '.join(str(x) for x in labels)}"
        )

    def __repr__(self) -> str:
        return (
            f"ScoreDecomposition(L{self.layer}H{self.head}, {self.query_pos}→{self.key_pos}, "
            f"{self.values.size} pieces, total={self.total:.6g}, model={self.model_score:.6g})"
        )

"""The identity as a sympy expression, in seed 004's notation.

Nodes are immutable sympy ``Expr`` subclasses that carry only data; how they print lives in
:mod:`symtrans.printing.latex` (one ``_print_<Node>`` method each). ``sympy.latex(node)``
works directly: every node hands itself to the symtrans printer.

The identity for a direction ``u`` (``\\overline{a}`` or ``\\overline{a} - \\overline{b}``)::

    logit = √N λ Σ_i <γ⊙u, c(t_i)> + <β, u> + b_U,   λ = 1 / sqrt(|c(x^L_p)|² + N ε)

Large index sets (neurons, source positions) stay sympy ``Sum``s over an index symbol.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import singledispatch
from typing import Any

import sympy
from sympy import Integer, Symbol
from sympy.core.symbol import Str
from sympy.printing.precedence import PRECEDENCE

from . import labels as lb
from .kinds import NormKind
from .printing.latex import SymtransLatexPrinter


class Node(sympy.Expr):
    """Base of symtrans's nodes: commutative scalars or vectors, printed by dispatch."""

    is_commutative = True

    def _latex(self, printer: Any) -> str:
        # sympy.latex(node) lands here: hand the node to the printer that knows it.
        return SymtransLatexPrinter(printer._settings)._print(self)


def _int(value: int | sympy.Expr) -> sympy.Expr:
    return Integer(value) if isinstance(value, int) else value


class TokenEmbedding(Node):
    """``\\underline{tok}``: the embedding row of a token."""

    def __new__(cls, token: str) -> TokenEmbedding:
        return super().__new__(cls, Str(token))

    @property
    def token(self) -> str:
        return str(self.args[0].name)


class Unembedding(Node):
    """``\\overline{tok}``: the unembedding column of a token."""

    def __new__(cls, token: str) -> Unembedding:
        return super().__new__(cls, Str(token))

    @property
    def token(self) -> str:
        return str(self.args[0].name)


class UnembeddingBias(Node):
    """``b_U[tok]``."""

    def __new__(cls, token: str) -> UnembeddingBias:
        return super().__new__(cls, Str(token))

    @property
    def token(self) -> str:
        return str(self.args[0].name)


class Logit(Node):
    """``logit_p(tok)``: the model's logit of a token at position ``p``."""

    def __new__(cls, token: str, position: int) -> Logit:
        return super().__new__(cls, Str(token), Integer(position))

    @property
    def token(self) -> str:
        return str(self.args[0].name)


class PositionalEmbedding(Node):
    """``P_p``."""

    def __new__(cls, position: int) -> PositionalEmbedding:
        return super().__new__(cls, Integer(position))


class Residual(Node):
    """``x^l_p``: the residual stream entering block ``l`` (``l = L``: the final norm)."""

    def __new__(cls, layer: int, position: int) -> Residual:
        return super().__new__(cls, Integer(layer), Integer(position))


class BlockOutput(Node):
    """``Δx^l_p = A^l_p + M^l_p``."""

    def __new__(cls, layer: int, position: int) -> BlockOutput:
        return super().__new__(cls, Integer(layer), Integer(position))


class AttentionOutput(Node):
    """``A^l_p``."""

    def __new__(cls, layer: int, position: int) -> AttentionOutput:
        return super().__new__(cls, Integer(layer), Integer(position))


class MLPOutput(Node):
    """``M^l_p``."""

    def __new__(cls, layer: int, position: int) -> MLPOutput:
        return super().__new__(cls, Integer(layer), Integer(position))


class HeadOutput(Node):
    """``H^{l,h}_p``: one head's output without ``b_O``."""

    def __new__(cls, layer: int, head: int | sympy.Expr, position: int) -> HeadOutput:
        return super().__new__(cls, Integer(layer), _int(head), Integer(position))


class HeadSourceOutput(Node):
    """``A^{l,h}_{p,s} v^{l,h}_s W_O^{l,h}``: a head's output carried from position ``s``."""

    def __new__(
        cls, layer: int, head: int | sympy.Expr, position: int, source: int | sympy.Expr
    ) -> HeadSourceOutput:
        return super().__new__(cls, Integer(layer), _int(head), Integer(position), _int(source))


class AttentionBias(Node):
    """``b_O^l``."""

    def __new__(cls, layer: int) -> AttentionBias:
        return super().__new__(cls, Integer(layer))


class NeuronOutput(Node):
    """``a^l_{p,n} W_out^l[n]``: one neuron's write (``n`` may be an index symbol)."""

    def __new__(cls, layer: int, neuron: int | sympy.Expr, position: int) -> NeuronOutput:
        return super().__new__(cls, Integer(layer), _int(neuron), Integer(position))


class MLPBias(Node):
    """``b_out^l``."""

    def __new__(cls, layer: int) -> MLPBias:
        return super().__new__(cls, Integer(layer))


class ExpertOutput(Node):
    """``g^l_{p,e} E^{l,e}_p``: one expert's write, router weight included."""

    def __new__(cls, layer: int, expert: int | sympy.Expr, position: int) -> ExpertOutput:
        return super().__new__(cls, Integer(layer), _int(expert), Integer(position))


class ExpertNeuronOutput(Node):
    """``g^l_{p,e} a^{l,e}_{p,n} W_out^{l,e}[n]``."""

    def __new__(
        cls, layer: int, expert: int | sympy.Expr, neuron: int | sympy.Expr, position: int
    ) -> ExpertNeuronOutput:
        return super().__new__(cls, Integer(layer), _int(expert), _int(neuron), Integer(position))


class SharedExpertOutput(Node):
    """``σ(g^l_p) S^l_p``: the shared expert through its gate."""

    def __new__(cls, layer: int, position: int) -> SharedExpertOutput:
        return super().__new__(cls, Integer(layer), Integer(position))


class SharedNeuronOutput(Node):
    """``σ(g^l_p) a^{l,S}_{p,n} W_out^{l,S}[n]``."""

    def __new__(cls, layer: int, neuron: int | sympy.Expr, position: int) -> SharedNeuronOutput:
        return super().__new__(cls, Integer(layer), _int(neuron), Integer(position))


class Ln1BiasNode(Node):
    """``β_1^l``: the first norm's bias of block ``l``, as a head of that block reads it."""

    def __new__(cls, layer: int) -> Ln1BiasNode:
        return super().__new__(cls, Integer(layer))


class HeadBias(Node):
    """``b_Q^{l,h}``, ``b_K^{l,h}`` or ``b_V^{l,h}`` (``kind`` ``Q``, ``K`` or ``V``)."""

    def __new__(cls, kind: str, layer: int, head: int) -> HeadBias:
        return super().__new__(cls, Str(kind), Integer(layer), Integer(head))


class EffectiveEmbedding(Node):
    """``\\underline{tok}^{EE}``: the effective embedding ``W_EE[tok]`` (block 0 applied to
    the token alone; ``attention=False``: with block 0's attention zeroed)."""

    def __new__(cls, token: str, attention: bool = True) -> EffectiveEmbedding:
        return super().__new__(cls, Str(token), Integer(int(attention)))

    @property
    def token(self) -> str:
        return str(self.args[0].name)

    @property
    def attention(self) -> bool:
        return bool(self.args[1])


class RemainderOf(Node):
    """``[t]_{-self}``: a block-0 term minus its value for the token on its own."""

    def __new__(cls, term: sympy.Expr) -> RemainderOf:
        return super().__new__(cls, term)


class ParallelPart(Node):
    """``(t)^∥``: the part of a head's output along the projection directions."""

    def __new__(cls, term: sympy.Expr) -> ParallelPart:
        return super().__new__(cls, term)


class PerpendicularPart(Node):
    """``(t)^⊥``: the rest of a head's output after :class:`ParallelPart`."""

    def __new__(cls, term: sympy.Expr) -> PerpendicularPart:
        return super().__new__(cls, term)


class TermRef(Node):
    """``t_i``: the ``i``-th term of the residual's sum (for the compact identity)."""

    def __new__(cls, index: int | sympy.Expr) -> TermRef:
        return super().__new__(cls, _int(index))


class Inner(Node):
    """``<a, b>``."""

    def __new__(cls, left: sympy.Expr, right: sympy.Expr) -> Inner:
        return super().__new__(cls, left, right)


class Center(Node):
    """``c(a) = a - mean(a)``, the linear centring of LayerNorm."""

    def __new__(cls, arg: sympy.Expr) -> Center:
        return super().__new__(cls, arg)


class Hadamard(Node):
    """``a ⊙ b``."""

    def __new__(cls, left: sympy.Expr, right: sympy.Expr) -> Hadamard:
        return super().__new__(cls, left, right)


class SquaredNorm(Node):
    """``|a|^2``."""

    def __new__(cls, arg: sympy.Expr) -> SquaredNorm:
        return super().__new__(cls, arg)


class OrderedSum(Node):
    """``t_1 + t_2 + ...`` kept in the given (model) order; sympy's ``Add`` sorts its terms."""

    precedence = PRECEDENCE["Add"]

    def __new__(cls, *terms: sympy.Expr) -> OrderedSum:
        return super().__new__(cls, *terms)


class Product(Node):
    """``a b c`` kept in the given order (``N ε``, ``√N λ (...)``)."""

    precedence = PRECEDENCE["Mul"]

    def __new__(cls, *factors: sympy.Expr) -> Product:
        return super().__new__(cls, *factors)


class Difference(Node):
    """``a - b`` kept in this order (a logit difference, a difference of directions)."""

    precedence = PRECEDENCE["Add"]

    def __new__(cls, left: sympy.Expr, right: sympy.Expr) -> Difference:
        return super().__new__(cls, left, right)


N = Symbol("N", positive=True, integer=True)
EPSILON = Symbol("epsilon", positive=True)
LAMBDA = Symbol("lambda", positive=True)
GAMMA = Symbol("gamma")
BETA = Symbol("beta")
NEURON_INDEX = Symbol("n", integer=True, nonnegative=True)
HEAD_INDEX = Symbol("h", integer=True, nonnegative=True)
SOURCE_INDEX = Symbol("s", integer=True, nonnegative=True)
TERM_INDEX = Symbol("i", integer=True, positive=True)
DIRECTION = Symbol("u")
MAX_EXPLICIT_HEADS = 8  # more heads than this in a layer fold into a sum over h


@singledispatch
def term_node(label: object, position: int, token: str) -> sympy.Expr:
    """The vector a label stands for at destination ``position`` (``token`` is ``t_p``)."""
    raise TypeError(f"no expression node for label {label!r}")


@term_node.register
def _(label: lb.Embed, position: int, token: str) -> sympy.Expr:
    return TokenEmbedding(token)


@term_node.register
def _(label: lb.PosEmbed, position: int, token: str) -> sympy.Expr:
    return PositionalEmbedding(position)


@term_node.register
def _(label: lb.ResidPre, position: int, token: str) -> sympy.Expr:
    return Residual(label.layer, position)


@term_node.register
def _(label: lb.BlockOut, position: int, token: str) -> sympy.Expr:
    return BlockOutput(label.layer, position)


@term_node.register
def _(label: lb.AttnOut, position: int, token: str) -> sympy.Expr:
    return AttentionOutput(label.layer, position)


@term_node.register
def _(label: lb.MlpOut, position: int, token: str) -> sympy.Expr:
    return MLPOutput(label.layer, position)


@term_node.register
def _(label: lb.HeadOut, position: int, token: str) -> sympy.Expr:
    return HeadOutput(label.layer, label.head, position)


@term_node.register
def _(label: lb.HeadSource, position: int, token: str) -> sympy.Expr:
    return HeadSourceOutput(label.layer, label.head, position, label.source)


@term_node.register
def _(label: lb.AttnBias, position: int, token: str) -> sympy.Expr:
    return AttentionBias(label.layer)


@term_node.register
def _(label: lb.Neuron, position: int, token: str) -> sympy.Expr:
    return NeuronOutput(label.layer, label.neuron, position)


@term_node.register
def _(label: lb.MlpBias, position: int, token: str) -> sympy.Expr:
    return MLPBias(label.layer)


@term_node.register
def _(label: lb.Expert, position: int, token: str) -> sympy.Expr:
    return ExpertOutput(label.layer, label.expert, position)


@term_node.register
def _(label: lb.ExpertNeuron, position: int, token: str) -> sympy.Expr:
    return ExpertNeuronOutput(label.layer, label.expert, label.neuron, position)


@term_node.register
def _(label: lb.SharedExpert, position: int, token: str) -> sympy.Expr:
    return SharedExpertOutput(label.layer, position)


@term_node.register
def _(label: lb.SharedNeuron, position: int, token: str) -> sympy.Expr:
    return SharedNeuronOutput(label.layer, label.neuron, position)


@term_node.register
def _(label: lb.EffectiveEmbed, position: int, token: str) -> sympy.Expr:
    return EffectiveEmbedding(token, label.attention)


@term_node.register
def _(label: lb.Remainder, position: int, token: str) -> sympy.Expr:
    return RemainderOf(term_node(label.of, position, token))


@term_node.register
def _(label: lb.Parallel, position: int, token: str) -> sympy.Expr:
    return ParallelPart(term_node(label.of, position, token))


@term_node.register
def _(label: lb.Perpendicular, position: int, token: str) -> sympy.Expr:
    return PerpendicularPart(term_node(label.of, position, token))


@term_node.register
def _(label: lb.Ln1Bias, position: int, token: str) -> sympy.Expr:
    return Ln1BiasNode(label.layer)


@term_node.register
def _(label: lb.QueryBias, position: int, token: str) -> sympy.Expr:
    return HeadBias("Q", label.layer, label.head)


@term_node.register
def _(label: lb.KeyBias, position: int, token: str) -> sympy.Expr:
    return HeadBias("K", label.layer, label.head)


@term_node.register
def _(label: lb.ValueBias, position: int, token: str) -> sympy.Expr:
    return HeadBias("V", label.layer, label.head)


@dataclass(frozen=True)
class TermGroup:
    """One symbolic term of the residual and the slice of labels it stands for."""

    node: sympy.Expr
    start: int
    stop: int


def term_groups(
    labels: Sequence[lb.Label], position: int, token: str, n_heads: int
) -> list[TermGroup]:
    """The terms of the residual in model order, runs of neurons (or of one layer's
    source positions, or of more than ``MAX_EXPLICIT_HEADS`` heads) folded into a symbolic
    ``Sum`` over an index so the expression stays small however many labels there are.
    A run of :class:`~symtrans.labels.Remainder` labels folds like the labels it wraps."""
    out: list[TermGroup] = []
    i = 0
    while i < len(labels):
        label = labels[i]
        if isinstance(label, lb.Remainder):
            j = i
            while j < len(labels) and isinstance(labels[j], lb.Remainder):
                j += 1
            inner = [r.of for r in labels[i:j] if isinstance(r, lb.Remainder)]
            out.extend(
                TermGroup(_wrapped(RemainderOf, g.node), i + g.start, i + g.stop)
                for g in term_groups(inner, position, token, n_heads)
            )
            i = j
            continue
        j = i + 1
        node: sympy.Expr | None = None
        if isinstance(label, lb.Neuron):
            j = _run(labels, i, _next_neuron)
            node = sympy.Sum(
                NeuronOutput(label.layer, NEURON_INDEX, position),
                (NEURON_INDEX, label.neuron, label.neuron + j - i - 1),
            )
        elif isinstance(label, lb.ExpertNeuron):
            j = _run(labels, i, _next_expert_neuron)
            node = sympy.Sum(
                ExpertNeuronOutput(label.layer, label.expert, NEURON_INDEX, position),
                (NEURON_INDEX, label.neuron, label.neuron + j - i - 1),
            )
        elif isinstance(label, lb.SharedNeuron):
            j = _run(labels, i, _next_neuron)
            node = sympy.Sum(
                SharedNeuronOutput(label.layer, NEURON_INDEX, position),
                (NEURON_INDEX, label.neuron, label.neuron + j - i - 1),
            )
        elif isinstance(label, lb.HeadSource):
            j = _run(labels, i, _same_layer)
            if j - i == n_heads * (position + 1):  # every head's every source
                node = sympy.Sum(
                    HeadSourceOutput(label.layer, HEAD_INDEX, position, SOURCE_INDEX),
                    (HEAD_INDEX, 0, n_heads - 1),
                    (SOURCE_INDEX, 0, position),
                )
            else:  # some heads' terms replaced (a projection): fold head by head
                j = _run(labels, i, _next_source)
                if label.source == 0 and j - i == position + 1:
                    node = sympy.Sum(
                        HeadSourceOutput(label.layer, label.head, position, SOURCE_INDEX),
                        (SOURCE_INDEX, 0, position),
                    )
        elif isinstance(label, lb.HeadOut):
            j = _run(labels, i, _next_head)
            if j - i > MAX_EXPLICIT_HEADS:
                node = sympy.Sum(
                    HeadOutput(label.layer, HEAD_INDEX, position),
                    (HEAD_INDEX, label.head, label.head + j - i - 1),
                )
        if node is None:
            j = i + 1
            node = term_node(label, position, token)
        out.append(TermGroup(node, i, j))
        i = j
    return out


def _same_layer(a: Any, b: Any) -> bool:
    return bool(a.layer == b.layer)


def _next_neuron(a: Any, b: Any) -> bool:
    return bool(a.layer == b.layer and b.neuron == a.neuron + 1)


def _next_expert_neuron(a: Any, b: Any) -> bool:
    return bool((a.layer, a.expert) == (b.layer, b.expert) and b.neuron == a.neuron + 1)


def _next_head(a: Any, b: Any) -> bool:
    return bool(a.layer == b.layer and b.head == a.head + 1)


def _next_source(a: Any, b: Any) -> bool:
    return bool((a.layer, a.head) == (b.layer, b.head) and b.source == a.source + 1)


def _run(labels: Sequence[lb.Label], i: int, follows: Callable[[Any, Any], bool]) -> int:
    """The end of the run of labels of ``labels[i]``'s type from ``i`` on, each one
    ``follows(previous, next)``."""
    j = i + 1
    while (
        j < len(labels) and type(labels[j]) is type(labels[i]) and follows(labels[j - 1], labels[j])
    ):
        j += 1
    return j


def _wrapped(wrap: type[Node], node: sympy.Expr) -> sympy.Expr:
    """``wrap(node)``, pushed inside a ``Sum``."""
    if isinstance(node, sympy.Sum):
        return sympy.Sum(wrap(node.function), *node.limits)
    return wrap(node)


def direction_node(answer: str, vs: str | None) -> sympy.Expr:
    """``\\overline{a}`` or ``\\overline{a} - \\overline{b}``."""
    if vs is None:
        return Unembedding(answer)
    return Difference(Unembedding(answer), Unembedding(vs))


def logit_node(answer: str, vs: str | None, position: int) -> sympy.Expr:
    if vs is None:
        return Logit(answer, position)
    return Difference(Logit(answer, position), Logit(vs, position))


def unembedding_bias_node(answer: str, vs: str | None) -> sympy.Expr:
    if vs is None:
        return UnembeddingBias(answer)
    return Difference(UnembeddingBias(answer), UnembeddingBias(vs))


def _read(u: sympy.Expr, has_gamma: bool) -> sympy.Expr:
    return Hadamard(GAMMA, u) if has_gamma else u


def _term_inner(read: sympy.Expr, term: sympy.Expr, centred: bool) -> sympy.Expr:
    """``<γ⊙u, c(t)>``, pushed inside a ``Sum`` (the inner product is linear)."""
    if isinstance(term, sympy.Sum):
        return sympy.Sum(_term_inner(read, term.function, centred), *term.limits)
    return Inner(read, Center(term) if centred else term)


def residual_equation(terms: Sequence[sympy.Expr], n_layers: int, position: int) -> sympy.Equality:
    """``x^L_p = Σ_i t_i``."""
    return sympy.Eq(Residual(n_layers, position), OrderedSum(*terms), evaluate=False)


def scale_equation(kind: NormKind, n_layers: int, position: int) -> sympy.Equality:
    """``λ = 1/sqrt(|c(x^L_p)|² + Nε)`` (``|x|²`` for RMSNorm)."""
    x = Residual(n_layers, position)
    inner = Center(x) if kind is NormKind.LAYER else x
    rhs = sympy.Pow(
        OrderedSum(SquaredNorm(inner), Product(N, EPSILON)), sympy.Rational(-1, 2), evaluate=False
    )
    return sympy.Eq(LAMBDA, rhs, evaluate=False)


def logit_equation(
    terms: Sequence[sympy.Expr],
    answer: str,
    vs: str | None,
    position: int,
    kind: NormKind,
    has_gamma: bool,
    has_beta: bool,
) -> sympy.Equality:
    """``logit = √N λ Σ_i <γ⊙u, c(t_i)> + <β, u> + b_U``."""
    u = direction_node(answer, vs)
    read = _read(u, has_gamma)
    centred = kind is NormKind.LAYER
    inners = [_term_inner(read, t, centred) for t in terms]
    body = Product(sympy.sqrt(N), LAMBDA, OrderedSum(*inners))
    return _logit_equation(body, u, answer, vs, position, has_beta)


def _logit_equation(
    body: sympy.Expr, u: sympy.Expr, answer: str, vs: str | None, position: int, has_beta: bool
) -> sympy.Equality:
    """``logit = body + <β, u> + b_U`` (``<β, u>`` only where the norm has a bias)."""
    parts: list[sympy.Expr] = [body]
    if has_beta:
        parts.append(Inner(BETA, u))
    parts.append(unembedding_bias_node(answer, vs))
    return sympy.Eq(logit_node(answer, vs, position), OrderedSum(*parts), evaluate=False)


def compact_logit_equation(
    n_terms: int,
    answer: str,
    vs: str | None,
    position: int,
    kind: NormKind,
    has_gamma: bool,
    has_beta: bool,
) -> sympy.Equality:
    """``logit = √N λ Σ_{i=1}^{n} <γ⊙u, c(t_i)> + <β, u> + b_U`` over the residual's terms,
    with the direction written as the symbol ``u`` (see :func:`direction_equation`)."""
    u = DIRECTION
    read = _read(u, has_gamma)
    inner = Inner(
        read, Center(TermRef(TERM_INDEX)) if kind is NormKind.LAYER else TermRef(TERM_INDEX)
    )
    body = Product(sympy.sqrt(N), LAMBDA, sympy.Sum(inner, (TERM_INDEX, 1, n_terms)))
    return _logit_equation(body, u, answer, vs, position, has_beta)


def direction_equation(answer: str, vs: str | None) -> sympy.Equality:
    """``u = \\overline{a}`` or ``u = \\overline{a} - \\overline{b}``."""
    return sympy.Eq(DIRECTION, direction_node(answer, vs), evaluate=False)

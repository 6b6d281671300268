"""Typed labels of the terms of a residual stream.

A label names one term of the sum ``x^L_p = sum_i t_i`` by what it is (component, layer, head,
neuron, source position), never by a string to be parsed back apart. ``str(label)`` is the
TransformerLens-style name used in tables (``embed``, ``pos_embed``, ``L3H2``, ``3_mlp_out``,
``L3N17``, ``bias``); the LaTeX form lives in :mod:`symtrans.expression` and the printers.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Embed:
    """The token embedding row of the token at the destination position, ``W_E[t_p]``."""

    def __str__(self) -> str:
        return "embed"


@dataclass(frozen=True, order=True)
class PosEmbed:
    """The learned positional embedding ``W_pos[p]`` (absent in rotary models)."""

    def __str__(self) -> str:
        return "pos_embed"


@dataclass(frozen=True, order=True)
class ResidPre:
    """The whole residual stream entering block ``layer``, ``x^l_p``: the embedding and every
    block before ``layer`` as one term (what patching ``resid_pre`` replaces)."""

    layer: int

    def __str__(self) -> str:
        return f"{self.layer}_resid_pre"


@dataclass(frozen=True, order=True)
class BlockOut:
    """Everything block ``layer`` adds to the residual stream, ``Δx^l_p = A^l_p + M^l_p``."""

    layer: int

    def __str__(self) -> str:
        return f"{self.layer}_block_out"


@dataclass(frozen=True, order=True)
class AttnOut:
    """The attention output of block ``layer``, all heads and ``b_O`` together."""

    layer: int

    def __str__(self) -> str:
        return f"{self.layer}_attn_out"


@dataclass(frozen=True, order=True)
class MlpOut:
    """The MLP output of block ``layer``."""

    layer: int

    def __str__(self) -> str:
        return f"{self.layer}_mlp_out"


@dataclass(frozen=True, order=True)
class HeadOut:
    """One head's output ``H^{l,h}_p = z^{l,h}_p W_O^{l,h}`` (without ``b_O``)."""

    layer: int
    head: int

    def __str__(self) -> str:
        return f"L{self.layer}H{self.head}"


@dataclass(frozen=True, order=True)
class HeadSource:
    """One head's output carried from source position ``source``: ``A_{p,s} v_s W_O``."""

    layer: int
    head: int
    source: int

    def __str__(self) -> str:
        return f"L{self.layer}H{self.head}S{self.source}"


@dataclass(frozen=True, order=True)
class AttnBias:
    """The attention output bias ``b_O^l`` of block ``layer``."""

    layer: int

    def __str__(self) -> str:
        return f"{self.layer}_attn_bias"


@dataclass(frozen=True, order=True)
class Neuron:
    """One MLP neuron's write, ``a^l_{p,n} W_out^l[n]``."""

    layer: int
    neuron: int

    def __str__(self) -> str:
        return f"L{self.layer}N{self.neuron}"


@dataclass(frozen=True, order=True)
class MlpBias:
    """The MLP output bias ``b_out^l`` of block ``layer``."""

    layer: int

    def __str__(self) -> str:
        return f"{self.layer}_mlp_bias"


@dataclass(frozen=True, order=True)
class Expert:
    """One expert's write in a mixture-of-experts MLP, its router weight included:
    ``g^l_{p,e} E^{l,e}(x)`` (unselected experts have weight 0)."""

    layer: int
    expert: int

    def __str__(self) -> str:
        return f"L{self.layer}E{self.expert}"


@dataclass(frozen=True, order=True)
class ExpertNeuron:
    """One neuron of one expert: ``g^l_{p,e} a^{l,e}_{p,n} W_out^{l,e}[n]``."""

    layer: int
    expert: int
    neuron: int

    def __str__(self) -> str:
        return f"L{self.layer}E{self.expert}N{self.neuron}"


@dataclass(frozen=True, order=True)
class SharedExpert:
    """The shared expert of a Qwen-MoE MLP, through its gate: ``σ(g^l_p) S^l(x)``."""

    layer: int

    def __str__(self) -> str:
        return f"{self.layer}_shared_expert"


@dataclass(frozen=True, order=True)
class SharedNeuron:
    """One neuron of the shared expert, through its gate."""

    layer: int
    neuron: int

    def __str__(self) -> str:
        return f"L{self.layer}SN{self.neuron}"


@dataclass(frozen=True, order=True)
class Constant:
    """The part of the logit that no residual term carries: ``<β, u> + b_U``."""

    def __str__(self) -> str:
        return "bias"


@dataclass(frozen=True, order=True)
class EffectiveEmbed:
    """The effective embedding ``W_EE[t_p]`` of the destination token: the residual after
    block 0 when the token is the whole input at position 0 with no positional embedding,
    ``W_E[t] + attn0(t) + MLP0(...)`` (``attention=False``: block 0's attention zeroed,
    ``W_E[t] + MLP0(W_E[t])``). See :mod:`symtrans.analyses.effective`."""

    attention: bool = True

    def __str__(self) -> str:
        return "W_EE" if self.attention else "W_EE0"


@dataclass(frozen=True)
class Remainder:
    """What a block-0 term adds beyond the token on its own: the term minus the same term of
    the isolated-token run that :class:`EffectiveEmbed` absorbed (``0_mlp_out-self``)."""

    of: Label

    def __str__(self) -> str:
        return f"{self.of}-self"


@dataclass(frozen=True)
class Parallel:
    """A head's output projected onto a direction per source position (the source token's
    unembedding, by default): ``Σ_s (r_s·e_s/|e_s|²) e_s``. See
    :mod:`symtrans.analyses.projection`."""

    of: HeadOut

    def __str__(self) -> str:
        return f"{self.of}_par"


@dataclass(frozen=True)
class Perpendicular:
    """What is left of a head's output after :class:`Parallel`: ``H - Σ_s parallel_s``."""

    of: HeadOut

    def __str__(self) -> str:
        return f"{self.of}_perp"


# -- the constant pieces of attention: labels of path and score decompositions --------------


@dataclass(frozen=True, order=True)
class Ln1Bias:
    """The first norm's bias ``β1`` of block ``layer``, read by a head of that block."""

    layer: int

    def __str__(self) -> str:
        return f"{self.layer}_ln1_bias"


@dataclass(frozen=True, order=True)
class ValueBias:
    """A head's value bias ``b_V``."""

    layer: int
    head: int

    def __str__(self) -> str:
        return f"L{self.layer}H{self.head}_b_V"


@dataclass(frozen=True, order=True)
class QueryBias:
    """``b_Q`` of one head."""

    layer: int
    head: int

    def __str__(self) -> str:
        return f"L{self.layer}H{self.head}_b_Q"


@dataclass(frozen=True, order=True)
class KeyBias:
    """``b_K`` of one head."""

    layer: int
    head: int

    def __str__(self) -> str:
        return f"L{self.layer}H{self.head}_b_K"


Label = (
    Embed
    | PosEmbed
    | ResidPre
    | BlockOut
    | AttnOut
    | MlpOut
    | HeadOut
    | HeadSource
    | AttnBias
    | Neuron
    | MlpBias
    | Expert
    | ExpertNeuron
    | SharedExpert
    | SharedNeuron
    | EffectiveEmbed
    | Remainder
    | Parallel
    | Perpendicular
)


def base(label: Label) -> Label:
    """The model-order label a derived label stands in for (itself for the others)."""
    while isinstance(label, (Remainder, Parallel, Perpendicular)):
        label = label.of
    return label


# What a path (symtrans.expand_head) or an attention score (symtrans.attention_scores) is
# written over: the terms of the residual, and the constant pieces of attention.
PathNode = Label | Ln1Bias | ValueBias
ScoreNode = Label | Ln1Bias | QueryBias | KeyBias

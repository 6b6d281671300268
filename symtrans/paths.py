"""Path expansion: a head's term written through its value input as a sum over earlier terms.

With the attention pattern ``A`` and the first norm's scale ``σ1`` frozen at their values, a
head's output at ``p`` is linear in the residual entering its block (``x^l``, for sequential
GPT-2 blocks and parallel GPT-NeoX blocks alike; rotary does not touch values)::

    H^{l,h}_p = Σ_s A_{p,s} (γ1 ⊙ c(x^l_s) / σ1_s + β1) W_V W_O + Σ_s A_{p,s} b_V W_O

and ``x^l_s`` is the sum of earlier terms (embedding, earlier heads, their ``b_O``, MLPs) at
position ``s``. Its contribution to the logit, ``<H_p, w>/σ`` with ``w = c(γ⊙u)``, is then a
sum over (term, source position) plus the ``β1`` and ``b_V`` pieces; an earlier head's term is
expanded the same way, to the requested depth. Project first: the read vector is carried
backwards, ``r ↦ c(γ1 ⊙ W_V W_O r)``, so no path builds more than a ``[pos, d_model]`` tensor.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import einops
import torch
from torch import Tensor

from . import labels as lb
from .adapter.protocol import Hook, HookKey, ModelAdapter, RunResult
from .decompose import direction_ids, resolve_model
from .decomposition import Decomposition
from .errors import IdentityError, InvalidArgumentError, UnsupportedModelError
from .evaluate import ACCUMULATE, unembed_direction
from .labels import Ln1Bias, ValueBias  # the constant pieces (also re-exported here)
from .norm import FinalNorm, NormKind
from .report.sheet import Reportable, Sheet
from .verify import default_tolerance

PATH_ATOL = 1e-10  # float64 LayerNorm: the paths add up to the head's term to this


class AttentionAdapter(ModelAdapter, Protocol):
    """An adapter that also gives the query/key/value weights and the first norms."""

    def W_Q(self, layer: int) -> Tensor: ...  # [n_heads, d_model, d_head]
    def W_K(self, layer: int) -> Tensor: ...  # [n_heads, d_model, d_head]
    def W_V(self, layer: int) -> Tensor: ...  # [n_heads, d_model, d_head]
    def b_Q(self, layer: int) -> Tensor: ...  # [n_heads, d_head]
    def b_K(self, layer: int) -> Tensor: ...  # [n_heads, d_head]
    def b_V(self, layer: int) -> Tensor: ...  # [n_heads, d_head]
    def attn_scale(self) -> float: ...
    def ln1(self, layer: int) -> FinalNorm: ...


def attention_adapter(model: Any) -> AttentionAdapter:
    """The model's adapter, or :class:`UnsupportedModelError` if it cannot give the
    attention weights (the ``TransformerBridge`` and ``HookedTransformer`` adapters do)."""
    adapter = resolve_model(model)
    needed = ("W_Q", "W_K", "W_V", "b_Q", "b_K", "b_V", "attn_scale", "ln1")
    missing = [name for name in needed if not hasattr(adapter, name)]
    if missing:
        raise UnsupportedModelError(
            f"{type(adapter).__name__} does not give the attention weights ({', '.join(missing)}) "
            "that path and attention-score decompositions need; load the model as a "
            "TransformerBridge (st.load_model(...) does) or a HookedTransformer"
        )
    spec = adapter.spec
    shape = tuple(adapter.W_K(0).shape)  # type: ignore[attr-defined]
    if shape[0] != spec.n_heads:  # grouped-query attention: adapters repeat key/value heads
        raise UnsupportedModelError(
            f"{type(adapter).__name__} gives keys for {shape[0]} heads, not one per query head "
            f"({spec.n_heads}); path and attention-score decompositions need W_K and W_V per "
            "query head (grouped-query attention: each key/value head repeated)"
        )
    return adapter  # type: ignore[return-value]


PathNode = lb.Label | Ln1Bias | ValueBias


# -- the activations, at every position --------------------------------------------------------


@dataclass(frozen=True)
class Trace:
    """What one forward pass of one prompt gives, float64, batch dropped."""

    embed: Tensor  # [pos, d_model]
    pos_embed: Tensor | None  # [pos, d_model]
    head_out: dict[int, Tensor]  # layer -> [pos, n_heads, d_model], z W_O per head
    b_O: dict[int, Tensor]  # layer -> [d_model]
    mlp_out: dict[int, Tensor]  # layer -> [pos, d_model]
    pattern: dict[int, Tensor]  # layer -> [n_heads, q, k]
    ln1_scale: dict[int, Tensor]  # layer -> [pos]
    run: RunResult


def trace(
    adapter: AttentionAdapter,
    tokens: Sequence[int],
    layer: int,
    extra: frozenset[HookKey] = frozenset(),
) -> Trace:
    """Run ``tokens`` once, caching every position of what the residual entering blocks
    ``0..layer`` is made of, their patterns and first-norm scales (and ``extra``)."""
    spec = adapter.spec

    def every(hook: Hook, at: int = -1) -> HookKey:
        return HookKey(hook, at, all_positions=True)

    keys = {every(Hook.EMBED), *extra}
    if spec.has_pos_embed:
        keys.add(every(Hook.POS_EMBED))
    for at in range(layer + 1):
        keys |= {every(Hook.PATTERN, at), every(Hook.LN1_SCALE, at), every(Hook.Z, at)}
        if spec.has_mlp and at < layer:
            keys.add(every(Hook.MLP_OUT, at))
    run = adapter.run(
        torch.tensor([list(tokens)], dtype=torch.long),
        torch.tensor([len(tokens) - 1], dtype=torch.long),
        frozenset(keys),
    )

    def act(hook: Hook, at: int = -1) -> Tensor:
        return run.activations[every(hook, at)][0].to(ACCUMULATE)

    head_out = {
        at: einops.einsum(act(Hook.Z, at), adapter.W_O(at).to(ACCUMULATE), "s h d, h d m -> s h m")
        for at in range(layer)
    }
    return Trace(
        embed=act(Hook.EMBED),
        pos_embed=act(Hook.POS_EMBED) if spec.has_pos_embed else None,
        head_out=head_out,
        b_O={at: adapter.b_O(at).to(ACCUMULATE) for at in range(layer)},
        mlp_out={at: act(Hook.MLP_OUT, at) for at in range(layer)} if spec.has_mlp else {},
        pattern={at: act(Hook.PATTERN, at) for at in range(layer + 1)},
        ln1_scale={at: act(Hook.LN1_SCALE, at).reshape(-1) for at in range(layer + 1)},
        run=run,
    )


def block_input_terms(tr: Trace, layer: int) -> list[tuple[lb.Label, Tensor]]:
    """The terms of ``x^layer_s`` at every position, in model order: ``(label, [pos, d_model])``.
    They add up to the input of block ``layer`` (``blocks.{layer}.hook_resid_pre``)."""
    out: list[tuple[lb.Label, Tensor]] = [(lb.Embed(), tr.embed)]
    if tr.pos_embed is not None:
        out.append((lb.PosEmbed(), tr.pos_embed))
    for at in range(layer):
        heads = tr.head_out[at]
        out.extend((lb.HeadOut(at, h), heads[:, h]) for h in range(heads.shape[1]))
        out.append((lb.AttnBias(at), tr.b_O[at].expand_as(tr.embed)))
        if at in tr.mlp_out:
            out.append((lb.MlpOut(at), tr.mlp_out[at]))
    return out


# -- the result ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Path:
    """One path to the logit: ``nodes[0] → ... → nodes[-1]`` (the expanded head last), each
    read at ``positions[i]`` (the last is the destination ``p``), and its contribution."""

    nodes: tuple[PathNode, ...]
    positions: tuple[int, ...]
    value: float

    def __str__(self) -> str:
        steps = " → ".join(f"{n}@{s}" for n, s in zip(self.nodes, self.positions, strict=True))
        return f"{steps} → logit: {self.value:+.6g}"


@dataclass(frozen=True)
class PathExpansion(Reportable):
    """A head's logit term as a sum of paths, largest ``|value|`` first."""

    head: lb.HeadOut
    position: int
    depth: int
    paths: tuple[Path, ...]
    head_value: float  # the head's term <z_p W_O, w>/σ, from the model's own z
    token_strings: tuple[str, ...] = ()
    answer: str = ""
    vs: str | None = None

    dtype: str = "float64"  # the model's
    norm: NormKind = NormKind.LAYER

    @property
    def tolerance(self) -> float:
        """The default tolerance of :meth:`verify`: ``PATH_ATOL``, or the documented one of
        the model's dtype and norm (:mod:`symtrans.verify`) where that is larger."""
        magnitude = float(sum(abs(p.value) for p in self.paths))
        return max(PATH_ATOL, default_tolerance(self.dtype, self.norm, magnitude))

    def sheet(self, use_macros: bool = False) -> Sheet:
        from .report.analyses import paths_sheet

        return paths_sheet(self, use_macros=use_macros)

    @property
    def total(self) -> float:
        return float(sum(p.value for p in self.paths))

    @property
    def error(self) -> float:
        """``Σ paths - head_value``: zero up to rounding."""
        return self.total - self.head_value

    def top(self, k: int) -> tuple[Path, ...]:
        return self.paths[:k]

    def verify(self, atol: float | None = None) -> PathExpansion:
        """``self``, or :class:`IdentityError` if the paths do not add up to the head's term."""
        atol = self.tolerance if atol is None else atol
        if not abs(self.error) <= atol:
            raise IdentityError(
                f"the {len(self.paths)} paths into {self.head} at position {self.position} add "
                f"up to {self.total:.12g} but the head's term is {self.head_value:.12g} "
                f"(difference {self.error:.3g}, tolerance {atol:g}); in float32 or for RMSNorm "
                "models pass a larger atol, otherwise this is a symtrans bug"
            )
        return self


# -- the expansion ------------------------------------------------------------------------------


def direction(adapter: ModelAdapter, d: Decomposition) -> Tensor:
    """``u`` of ``d``: ``W_U[:, answer]`` (minus ``W_U[:, vs]``), ``[d_model]`` float64."""
    a, b = direction_ids(adapter, d.answer, d.vs)
    u, _ = unembed_direction(adapter, torch.tensor([a]), None if b is None else torch.tensor([b]))
    return u[0]


def resolve_head(head: lb.HeadOut | str, n_layers: int, n_heads: int) -> lb.HeadOut:
    heads = {
        str(lb.HeadOut(la, h)): lb.HeadOut(la, h) for la in range(n_layers) for h in range(n_heads)
    }
    label = heads.get(head) if isinstance(head, str) else head
    if label is None or label not in heads.values():
        raise InvalidArgumentError(
            f"{head!r} is not a head of this model ({n_layers} layers × {n_heads} heads); "
            "pass lb.HeadOut(layer, head) or its name, e.g. 'L1H2'"
        )
    return label


def expand_head(
    model: Any, d: Decomposition, head: lb.HeadOut | str, depth: int = 2
) -> PathExpansion:
    """The term of ``head`` in ``d`` (the ``heads`` split's value) as a sum of paths through
    its value input, expanding earlier heads up to ``depth`` heads per path (``depth=1``:
    source term → head; ``depth=2``: source term → earlier head → head)."""
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
        raise InvalidArgumentError(f"depth must be an int ≥ 1, got {depth!r}")
    adapter = attention_adapter(model)
    spec = adapter.spec
    target = resolve_head(head, spec.n_layers, spec.n_heads)
    tokens = list(d.tokens[: d.position + 1])  # causal: later tokens change nothing here
    tr = trace(adapter, tokens, target.layer)
    norm = spec.norm.to(ACCUMULATE)
    r = norm.read_vector(direction(adapter, d)) / d.scale  # [d_model]
    z = tr.run.activations[HookKey(Hook.Z, target.layer, all_positions=True)][0]
    W_O = adapter.W_O(target.layer)[target.head].to(ACCUMULATE)
    head_value = float(z[d.position, target.head].to(ACCUMULATE) @ (W_O @ r))
    found = list(_expand(adapter, tr, target, d.position, r, depth))
    paths = sorted(
        (Path(nodes, positions, value) for nodes, positions, value in found),
        key=lambda p: -abs(p.value),
    )
    return PathExpansion(
        target,
        d.position,
        depth,
        tuple(paths),
        head_value,
        d.token_strings,
        d.answer,
        d.vs,
        d.model.dtype,
        d.model.norm,
    )


Found = tuple[tuple[PathNode, ...], tuple[int, ...], float]


def _expand(
    adapter: AttentionAdapter,
    tr: Trace,
    head: lb.HeadOut,
    q: int,
    r: Tensor,
    depth: int,
) -> Iterator[Found]:
    """Paths of ``<H^{head}_q, r>``, each ending in ``head`` at ``q``. ``r``: ``[d_model]``."""
    layer, h = head.layer, head.head
    ln1 = adapter.ln1(layer).to(ACCUMULATE)
    o = adapter.W_O(layer)[h].to(ACCUMULATE) @ r  # [d_head]
    ov = adapter.W_V(layer)[h].to(ACCUMULATE) @ o  # [d_model]
    read = ln1.read_vector(ov)  # c(γ1 ⊙ W_V W_O r)
    A = tr.pattern[layer][h, q, : q + 1]  # [S]
    coef = A / tr.ln1_scale[layer][: q + 1]  # [S]
    end = ((head,), (q,))
    for label, vectors in block_input_terms(tr, layer):
        values = coef * (vectors[: q + 1] @ read)  # [S]
        for s in range(q + 1):
            if isinstance(label, lb.HeadOut) and depth > 1:
                for nodes, positions, value in _expand(
                    adapter, tr, label, s, coef[s] * read, depth - 1
                ):
                    yield nodes + end[0], positions + end[1], value
            else:
                yield (label, head), (s, q), float(values[s])
    beta = 0.0 if ln1.beta is None else float(ln1.beta @ ov)
    b_V = float(adapter.b_V(layer)[h].to(ACCUMULATE) @ o)
    for s in range(q + 1):
        if ln1.beta is not None:
            yield (Ln1Bias(layer), head), (s, q), float(A[s]) * beta
        yield (ValueBias(layer, h), head), (s, q), float(A[s]) * b_V

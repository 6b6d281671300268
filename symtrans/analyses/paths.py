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

from collections.abc import Iterator
from typing import Any

from torch import Tensor

from .. import labels as lb
from ..adapter import attention_adapter
from ..adapter.protocol import AttentionAdapter, Hook
from ..errors import InvalidArgumentError, UnsupportedModelError
from ..results.decomposition import Decomposition
from ..results.paths import Path, PathExpansion
from ..trace.blocks import BlockInputs, block_input_terms, block_inputs
from ..trace.evaluate import answer_direction
from ..trace.inputs import resolve_head
from ..trace.splits import ACCUMULATE


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
    if spec.clip_qkv is not None:
        raise UnsupportedModelError(
            f"{spec.architecture}: the model clamps its values (clip_qkv={spec.clip_qkv:g}), so a "
            "head's output is not linear in the residual it reads and has no exact paths; "
            "d.project (per source position) still applies"
        )
    target = resolve_head(head, spec.n_layers, spec.n_heads)
    tokens = list(d.tokens[: d.position + 1])  # causal: later tokens change nothing here
    tr = block_inputs(adapter, tokens, target.layer)
    norm = spec.norm.to(ACCUMULATE)
    r = norm.read_vector(answer_direction(adapter, d.answer, d.vs)) / d.scale  # [d_model]
    z = tr.act(Hook.Z, target.layer)
    W_O = adapter.W_O(target.layer)[target.head].to(ACCUMULATE)
    head_value = float(z[d.position, target.head] @ (W_O @ tr.read(target.layer, d.position, r)))
    found = list(_expand(adapter, tr, target, d.position, r, depth))
    paths = sorted(
        (Path(nodes, positions, value) for nodes, positions, value in found),
        key=lambda p: -abs(p.value),
    )
    return PathExpansion(
        head=target,
        position=d.position,
        depth=depth,
        paths=tuple(paths),
        head_value=head_value,
        token_strings=d.token_strings,
        answer=d.answer,
        vs=d.vs,
        dtype=d.model.dtype,
        float32_norms=d.model.float32_norms,
        norm=d.model.norm,
    )


Found = tuple[tuple[lb.PathNode, ...], tuple[int, ...], float]


def _expand(
    adapter: AttentionAdapter,
    tr: BlockInputs,
    head: lb.HeadOut,
    q: int,
    r: Tensor,
    depth: int,
) -> Iterator[Found]:
    """Paths of ``<H^{head}_q, r>`` (the head's output as written to the residual stream),
    each ending in ``head`` at ``q``. ``r``: ``[d_model]``."""
    layer, h = head.layer, head.head
    first = adapter.ln1(layer)
    ln1 = None if first is None else first.to(ACCUMULATE)
    o = adapter.W_O(layer)[h].to(ACCUMULATE) @ tr.read(layer, q, r)  # [d_head]
    ov = adapter.W_V(layer)[h].to(ACCUMULATE) @ o  # [d_model]
    read = ov if ln1 is None else ln1.read_vector(ov)  # c(γ1 ⊙ W_V W_O r)
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
    beta = 0.0 if ln1 is None or ln1.beta is None else float(ln1.beta @ ov)
    b_V = float(adapter.b_V(layer)[h].to(ACCUMULATE) @ o)
    for s in range(q + 1):
        if ln1 is not None and ln1.beta is not None:
            yield (lb.Ln1Bias(layer), head), (s, q), float(A[s]) * beta
        yield (lb.ValueBias(layer, h), head), (s, q), float(A[s]) * b_V

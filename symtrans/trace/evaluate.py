"""Numbers for every term: ``<c(γ⊙u), t_i> / σ``, projected first.

The read-out vector ``w = c(γ⊙u)`` is formed once per prompt and every term of a split is an
inner product with it (:mod:`.splits`). Everything is computed in float64 from the model's own
activations, whatever the model's dtype.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

from ..adapter.protocol import Hook, HookKey, ModelAdapter, ReadoutAdapter, RunResult
from ..kinds import Split
from .checks import check_consistency, check_hooks
from .inputs import direction_ids
from .run import forward
from .splits import ACCUMULATE, ProjectedReading, required_hooks, split_values, term_inner_products


@dataclass(frozen=True)
class Evaluation:
    """One group of prompts (same destination position) evaluated for one split."""

    values: Float[Tensor, "batch terms"]  # each term's contribution <w, t_i> / σ
    beta_term: Float[Tensor, " batch"]  # <β, u>
    unembed_bias: Float[Tensor, " batch"]  # b_U (difference)
    scale: Float[Tensor, " batch"]  # σ(x^L_p), the frozen scale
    model_logits: Float[Tensor, " batch"]  # the model's own logit (difference), before any cap
    model_outputs: Float[Tensor, " batch"]  # what the model outputs: after a soft-cap
    # the size of what the model rounded (see rounding_scale); None where the projections
    # were made in the model (remote) and the vectors never came back
    rounding: Float[Tensor, " batch"] | None


def unembed_direction(
    adapter: ModelAdapter, answer: Int[Tensor, " batch"], vs: Int[Tensor, " batch"] | None
) -> tuple[Float[Tensor, "batch d_model"], Float[Tensor, " batch"]]:
    """``u = W_U[:, answer] - W_U[:, vs]`` and ``b_U[answer] - b_U[vs]``, float64 (no
    ``vs``: the answer's alone)."""
    W_a, b_a = adapter.unembed(answer)
    u, b_U = W_a.to(ACCUMULATE), b_a.to(ACCUMULATE)
    if vs is not None:
        W_b, b_b = adapter.unembed(vs)
        u, b_U = u - W_b.to(ACCUMULATE), b_U - b_b.to(ACCUMULATE)
    return u, b_U


def answer_direction(
    adapter: ModelAdapter, answer: str, vs: str | None
) -> Float[Tensor, " d_model"]:
    """``u = W_U[:, answer]`` (minus ``W_U[:, vs]``) for one answer, float64."""
    a, b = direction_ids(adapter, answer, vs)
    u, _ = unembed_direction(adapter, torch.tensor([a]), None if b is None else torch.tensor([b]))
    return u[0]


def linear_logits(run: RunResult, capped: bool = False) -> Float[Tensor, "batch d_vocab"]:
    """The run's logits at the destinations, float64: before the soft-cap where the run read
    them there (:func:`~symtrans.trace.splits.linear_logit_hooks`), or with ``capped`` what
    the model outputs."""
    key = HookKey(Hook.UNEMBED)
    source = run.logits if capped or key not in run.activations else run.activations[key]
    return source.to(ACCUMULATE)


def direction_logits(
    run: RunResult,
    answer: Int[Tensor, " batch"],
    vs: Int[Tensor, " batch"] | None,
    capped: bool = False,
) -> Float[Tensor, " batch"]:
    """The model's own logit of ``answer`` (minus that of ``vs``) at each destination: the
    linear logit the terms add up to (before a soft-cap, read from the unembedding's hook
    where the model caps), or with ``capped`` what the model outputs."""
    logits = linear_logits(run, capped)
    rows = torch.arange(logits.shape[0])
    out = logits[rows, answer]
    return out if vs is None else out - logits[rows, vs]


def rounding_scale(
    adapter: ModelAdapter,
    run: RunResult,
    w: Float[Tensor, "batch d_model"],
    u: Float[Tensor, "batch d_model"],
    scale: Float[Tensor, " batch"],
) -> Float[Tensor, " batch"]:
    """How large the model's own rounding of this logit can be, in units of its dtype's
    epsilon: a random-walk error model over the vectors the model rounded on the way,

        sqrt( Σ_k Σ_j (w_j v_kj)² ) / σ  +  sqrt( Σ_j (LN(x)_j u_j)² ),

    ``v_k`` each residual the model stored (after every block) and every sublayer output in
    the run, the second part the final norm and the unembedding. It grows with the square
    root of the number of roundings, not with the sum of the parts' absolute values, so a
    low-precision check still catches a missing term of about that size."""
    squares = torch.zeros(w.shape[0], dtype=ACCUMULATE)
    for key, value in run.activations.items():
        if key.hook in (Hook.RESID_POST, Hook.ATTN_OUT, Hook.MLP_OUT) and not key.all_positions:
            squares = squares + ((w * value.to(ACCUMULATE)) ** 2).sum(-1)
    norm = adapter.spec.norm.to(ACCUMULATE)
    x = run.activations[HookKey(Hook.RESID_FINAL)].to(ACCUMULATE)
    head = ((norm.apply(x) * u) ** 2).sum(-1)
    return squares.sqrt() / scale + head.sqrt()


def evaluate(
    adapter: ModelAdapter,
    run: RunResult,
    split: Split,
    answer: Int[Tensor, " batch"],
    vs: Int[Tensor, " batch"] | None,
    position: int,
) -> Evaluation:
    """Evaluate the identity for one group of prompts sharing the destination ``position``."""
    norm = adapter.spec.norm.to(ACCUMULATE)
    u, b_U = unembed_direction(adapter, answer, vs)
    w = norm.read_vector(u)
    scale = norm.scale(run.activations[HookKey(Hook.RESID_FINAL)].to(ACCUMULATE))
    values = term_inner_products(adapter, run, split, w, position) / scale.unsqueeze(-1)
    return Evaluation(
        rounding=rounding_scale(adapter, run, w, u, scale),
        values=values,
        beta_term=norm.constant(u),
        unembed_bias=b_U,
        scale=scale,
        model_logits=direction_logits(run, answer, vs),
        model_outputs=direction_logits(run, answer, vs, capped=True),
    )


def projects_in_model(adapter: ModelAdapter) -> bool:
    """Whether ``adapter`` computes the read-out projections where the model runs (a remote
    nnsight model: its weights and activations stay on the server)."""
    return isinstance(adapter, ReadoutAdapter) and bool(getattr(adapter, "remote", False))


def evaluate_prompts(
    adapter: ModelAdapter,
    tokens: Sequence[Sequence[int]],
    split: Split,
    answer: Int[Tensor, " batch"],
    vs: Int[Tensor, " batch"] | None,
    position: int,
    prompts: Sequence[str] | None = None,
) -> Evaluation:
    """Run a group of prompts sharing the destination ``position`` and evaluate ``split``:
    one forward pass caching the destination rows the split needs, projected here; or, for
    an adapter that projects in the model (:func:`projects_in_model`), one pass that sends
    back only the projections."""
    keys = required_hooks(adapter.spec, split)
    positions = [position] * len(tokens)
    if not projects_in_model(adapter):
        keys = keys | check_hooks(adapter.spec, split)
        run = forward(adapter, tokens, positions, keys, prompts=prompts)
        check_consistency(adapter, run, split, position, prompts or ["?"] * len(tokens))
        return evaluate(adapter, run, split, answer, vs, position)
    out = adapter.readout(  # type: ignore[attr-defined]
        torch.as_tensor(tokens, dtype=torch.long),
        torch.as_tensor(positions, dtype=torch.long),
        keys,
        answer,
        vs,
    )
    scale = out.scale.to(ACCUMULATE)
    values = split_values(ProjectedReading(out), adapter.spec, split, position)
    return Evaluation(
        values=values / scale.unsqueeze(-1),
        beta_term=out.beta_term.to(ACCUMULATE),
        unembed_bias=out.unembed_bias.to(ACCUMULATE),
        scale=scale,
        model_logits=out.model_logits.to(ACCUMULATE),
        model_outputs=out.model_logits.to(ACCUMULATE),
        rounding=None,
    )

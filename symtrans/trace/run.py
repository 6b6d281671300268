"""The one place symtrans runs a model: a forward pass through the adapter, caching only the
activations asked for, and refusing activations that hold NaN or inf."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from jaxtyping import Int
from torch import Tensor

from ..adapter.protocol import Hook, HookKey, ModelAdapter, Patch, RunResult
from ..errors import NonFiniteError


def first_non_finite(run: RunResult) -> tuple[str, int] | None:
    """The first activation (or the logits) holding NaN or inf, and the batch row, if any."""
    named = [("logits", run.logits, False)] + [
        (
            key.hook.value + ("" if key.layer < 0 else f" of block {key.layer}"),
            value,
            key.hook is Hook.SCORES,  # masked scores are -inf by construction
        )
        for key, value in run.activations.items()
    ]
    for name, value, masked in named:
        rows = value.reshape(value.shape[0], -1)
        bad = (rows.isnan() if masked else ~torch.isfinite(rows)).any(dim=-1)
        if bool(bad.any()):
            return name, int(bad.nonzero()[0])
    return None


def forward(
    adapter: ModelAdapter,
    tokens: Int[Tensor, "batch pos"] | Sequence[Sequence[int]],
    positions: Int[Tensor, " batch"] | Sequence[int],
    keys: frozenset[HookKey] | set[HookKey],
    *,
    patches: Mapping[HookKey, Patch] | None = None,
    prompts: Sequence[str] | None = None,
) -> RunResult:
    """Run ``tokens`` once; ``positions`` are the destination positions (non-negative).
    ``prompts`` name the rows in the error a NaN or inf raises."""
    ids = torch.as_tensor(tokens, dtype=torch.long)
    dest = torch.as_tensor(positions, dtype=torch.long)
    kwargs = {} if patches is None else {"patches": patches}
    run = adapter.run(ids, dest, frozenset(keys), **kwargs)
    bad = first_non_finite(run)
    if bad is not None:
        where, row = bad
        prompt = repr(prompts[row]) if prompts is not None else f"#{row} of the batch"
        raise NonFiniteError(
            f"the model's {where} holds NaN or inf for prompt {prompt}; no sum of terms can be "
            "exact. Check the weights for NaN/inf (e.g. torch.isfinite(p).all() for p in "
            "model.parameters()) or load the model in float32/float64 if float16 overflowed"
        )
    return run

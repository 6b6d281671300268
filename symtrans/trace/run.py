"""The one place symtrans runs a model: a forward pass through the adapter (whole, or resumed
at a block), caching only the activations asked for, and refusing activations that hold NaN
or inf."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

import torch
from jaxtyping import Float, Int
from torch import Tensor

from ..adapter.protocol import (
    CellBatch,
    Hook,
    HookKey,
    ModelAdapter,
    Patch,
    ResumableAdapter,
    RunResult,
)
from ..errors import InvalidArgumentError, NonFiniteError
from .splits import linear_logit_hooks


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
    return _finite(adapter.run(ids, dest, frozenset(keys), **kwargs), prompts)


def forward_from(
    adapter: ModelAdapter,
    layer: int,
    resid: Float[Tensor, "batch pos d_model"],
    tokens: Int[Tensor, "batch pos"] | Sequence[Sequence[int]],
    positions: Int[Tensor, " batch"] | Sequence[int],
    keys: frozenset[HookKey] | set[HookKey],
    *,
    patches: Mapping[HookKey, Patch] | None = None,
    prompts: Sequence[str] | None = None,
) -> RunResult:
    """The forward pass of ``tokens`` from block ``layer`` on, the block's input replaced by
    ``resid``: an earlier run resumed (activation patching resumes the corrupted run).

    An adapter that can start at a block (:class:`~symtrans.adapter.protocol.ResumableAdapter`
    with ``resumable``) skips the blocks below; any other runs the whole pass with
    ``resid_pre`` of block ``layer`` replaced, which gives the same numbers. ``keys`` and
    ``patches`` must be at block ``layer`` or after it: below it nothing is run."""
    below = sorted(
        {
            key.hook.value + ("" if key.layer < 0 else f" of block {key.layer}")
            for key in (*keys, *(patches or {}))
            if (0 <= key.layer < layer) or key.hook in (Hook.EMBED, Hook.POS_EMBED)
        }
    )
    if below:
        raise InvalidArgumentError(
            f"a pass resumed at block {layer} runs nothing below it, so it cannot read or patch "
            f"{', '.join(below)}; read those from the run it resumes"
        )
    ids = torch.as_tensor(tokens, dtype=torch.long)
    dest = torch.as_tensor(positions, dtype=torch.long)
    if getattr(adapter, "resumable", False):
        resumable = cast(ResumableAdapter, adapter)
        return _finite(
            resumable.run_from(layer, resid, ids, dest, frozenset(keys), patches), prompts
        )
    start = HookKey(Hook.RESID_PRE, layer)
    given = dict(patches or {})
    inner = given.pop(start, None)

    def restart(value: Tensor) -> Tensor:
        x = resid.to(value.device, value.dtype)
        return x if inner is None else inner(x)

    given[start] = restart
    return _finite(adapter.run(ids, dest, frozenset(keys), given), prompts)


def forward_cells(
    adapter: ModelAdapter, batch: CellBatch, prompts: Sequence[str] | None = None
) -> Float[Tensor, "rows k"]:
    """The linear logits ``batch.columns`` at the last position of every row of a patching
    pass (:class:`~symtrans.adapter.protocol.CellBatch`; ``prompts`` name the pairs in the
    error a NaN or inf raises).

    An adapter that runs cells runs each row from its start block and position only; any
    other runs :func:`forward_from` once per start block, which gives the same numbers."""
    if getattr(adapter, "runs_cells", False):
        logits = cast(ResumableAdapter, adapter).run_cells(batch)
    else:
        logits = _cells_from_blocks(adapter, batch)
    bad = (~torch.isfinite(logits)).any(dim=-1)
    if bool(bad.any()):
        pair = int(batch.pairs[int(bad.nonzero()[0])])
        prompt = repr(prompts[pair]) if prompts is not None else f"pair #{pair}"
        raise _non_finite("logits (an activation patched in)", prompt)
    return logits


def _cells_from_blocks(adapter: ModelAdapter, batch: CellBatch) -> Float[Tensor, "rows k"]:
    """:func:`forward_cells` through :func:`forward_from`, one pass per start block."""
    out = []
    for layer in sorted(set(batch.starts.tolist())):
        rows = batch.starting(layer)
        patches: dict[HookKey, Patch] = {}
        for key, patch in batch.patches.items():
            if key.hook is Hook.RESID_PRE:
                raise InvalidArgumentError("a patching pass gives resid_pre as CellBatch.resid")
            if key.layer == layer:
                patches[key] = _from_offset(patch, batch.offset)
        pairs = batch.pairs[rows]
        run = forward_from(
            adapter,
            layer,
            batch.resid[rows],
            batch.tokens[pairs],
            [batch.length - 1] * len(pairs),
            linear_logit_hooks(adapter.spec),
            patches=patches,
        )
        key = HookKey(Hook.UNEMBED)
        logits = run.activations[key] if key in run.activations else run.logits
        out.append(logits.gather(1, batch.columns[rows].to(logits.device)).cpu())
    return torch.cat(out)


def _from_offset(patch: Patch, offset: int) -> Patch:
    """``patch`` applied to positions ``offset..`` of an activation."""

    def shifted(act: Tensor) -> Tensor:
        out = act.clone()
        out[:, offset:] = patch(act[:, offset:])
        return out

    return shifted


def _finite(run: RunResult, prompts: Sequence[str] | None) -> RunResult:
    """``run``, or :class:`NonFiniteError` naming the first row that holds NaN or inf."""
    bad = first_non_finite(run)
    if bad is not None:
        where, row = bad
        prompt = repr(prompts[row]) if prompts is not None else f"#{row} of the batch"
        raise _non_finite(where, prompt)
    return run


def _non_finite(where: str, prompt: str) -> NonFiniteError:
    """The error for NaN or inf in ``where`` (an activation, or the logits) of ``prompt``."""
    return NonFiniteError(
        f"NaN or inf in the model's {where} for prompt {prompt}; no sum of terms can be "
        "exact. Check the weights for NaN/inf (e.g. torch.isfinite(p).all() for p in "
        "model.parameters()) or load the model in float32/float64 if float16 overflowed"
    )

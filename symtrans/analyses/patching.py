"""Activation patching, exact and explained (seed 003).

Clean prompts against corrupted ones (one token swapped, same length): the metric is the mean
over the pairs of the logit (difference) at the last position. A *cell* is the corrupted run
with one activation of block ``l`` taken from the clean run — ``resid_pre``, ``attn_out`` or
``mlp_out`` at one position, or one head's ``z`` at every position — and its effect is
``patched − corrupted``, normalised by ``clean − corrupted``.

Fast: below block ``l`` every cell of that block is the corrupted run, and so is every
position before the patched one ``p`` (attention is causal). So a cell starts at block ``l``
and position ``p`` from the corrupted run's residual, attending to the corrupted run's keys
and values below ``p`` (:func:`~symtrans.trace.run.forward_cells`: where the adapter can
start at a block; any other runs the whole pass). The cells of one position are the rows of
one batch, each row its own patch, rows joining as the pass reaches their block.

Explained: with ``w = c(γ⊙u)``, ``t_i``/``t'_i`` the terms of the corrupted/patched run at
the destination and ``σ``/``σ'`` their frozen final-norm scales, the constant ``<β, u> + b_U``
cancels and

    patched − corrupted = Σ_i <w, t'_i − t_i>/σ'  +  Σ_i <w, t_i> (1/σ' − 1/σ)

exactly: the patched component's own term (the direct part), the change of every term
downstream of it, and the change of the frozen scale. The split's terms are used as they
are, except that the patched component is always one whole term (``x^l_p`` for
``resid_pre``, ``A^l_p`` for ``attn_out``, ``M^l_p`` for ``mlp_out``, the head's ``H`` for
``z``), so the terms of the patched run add up to its residual.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from .. import labels as lb
from ..adapter import model_info, resolve
from ..adapter.protocol import (
    CellBatch,
    Hook,
    HookKey,
    KeyValues,
    ModelAdapter,
    Patch,
    ResumableAdapter,
    RunResult,
)
from ..errors import InvalidArgumentError
from ..kinds import Site, Split, check_site, check_split
from ..results.patching import PatchExplanation, Patching
from ..trace.evaluate import direction_logits, linear_logits, unembed_direction
from ..trace.inputs import direction_ids, per_prompt, resolve_position
from ..trace.run import forward, forward_cells, forward_from
from ..trace.splits import ACCUMULATE, HostReading, Piece, linear_logit_hooks, pieces
from ..verify import default_tolerance

SITE_HOOKS: dict[Site, Hook] = {
    "resid_pre": Hook.RESID_PRE,
    "attn_out": Hook.ATTN_OUT,
    "mlp_out": Hook.MLP_OUT,
    "z": Hook.Z,
}

CONTROL = -1  # a cell with nothing patched (the resumed corrupted run)
FULL = -2  # resid_pre at every position (the clean run's residual)


@dataclass(frozen=True)
class _Pairs:
    """The prompts, checked: one token length for all, one answer (and vs) per pair."""

    clean: tuple[str, ...]
    corrupted: tuple[str, ...]
    answers: tuple[str, ...]
    versus: tuple[str | None, ...]
    clean_tokens: Int[Tensor, "pairs pos"]
    corrupted_tokens: Int[Tensor, "pairs pos"]
    answer_ids: Int[Tensor, " pairs"]
    vs_ids: Int[Tensor, " pairs"] | None

    @property
    def count(self) -> int:
        return len(self.clean)

    @property
    def length(self) -> int:
        return int(self.clean_tokens.shape[1])


@dataclass(frozen=True)
class _Context:
    """What every cell of a patching reads: the pairs, the clean run's activations at the
    site and the corrupted run's residual entering every block (every position)."""

    adapter: ModelAdapter
    site: Site
    pairs: _Pairs
    positions: tuple[int, ...]
    clean_acts: dict[int, Tensor]  # layer -> the site's activation, [pairs, pos, ...]
    corrupted_resid: dict[int, Float[Tensor, "pairs pos d_model"]]
    clean_logits: Float[Tensor, " pairs"]
    corrupted_logits: Float[Tensor, " pairs"]
    magnitude: float  # mean |logit(answer)| + |logit(vs)| of the corrupted pairs

    @property
    def destination(self) -> int:
        return self.pairs.length - 1

    def offset(self, column: int) -> int:
        """The first position a cell of ``column`` changes: its position, or for ``z`` (every
        patched position at once) the first patched one."""
        return min(self.positions) if self.site == "z" else self.positions[column]

    def control_offset(self, layer: int) -> int:
        """Where block ``layer``'s control resumes the corrupted run: the patched positions
        in turn, so the controls check the passes started at a position as well as at a
        block."""
        return self.offset(layer % len(self.positions))


# -- inputs -----------------------------------------------------------------------------------


def _prompts(value: str | Sequence[str], role: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence) and value and all(isinstance(p, str) for p in value):
        return tuple(value)
    raise InvalidArgumentError(
        f"{role} must be a prompt or a non-empty list of prompts, got {value!r}"
    )


def _pairs(
    adapter: ModelAdapter,
    clean: str | Sequence[str],
    corrupted: str | Sequence[str],
    answer: str | Sequence[str],
    vs: str | Sequence[str | None] | None,
) -> _Pairs:
    cleans, corrupts = _prompts(clean, "clean"), _prompts(corrupted, "corrupted")
    if len(cleans) != len(corrupts):
        raise InvalidArgumentError(
            f"patching pairs each clean prompt with a corrupted one, got {len(cleans)} clean "
            f"and {len(corrupts)} corrupted prompts; give lists of the same length"
        )
    n = len(cleans)
    answers = tuple(per_prompt(answer, n, "answer"))
    versus = tuple(per_prompt(vs, n, "vs"))
    if len({v is None for v in versus}) > 1:
        raise InvalidArgumentError(
            f"vs is given for some pairs and not others ({list(versus)}); the metric is one "
            "quantity averaged over the pairs: give vs for every pair, or for none"
        )
    clean_tokens = [adapter.tokenize(p) for p in cleans]
    corrupted_tokens = [adapter.tokenize(p) for p in corrupts]
    for i, (a, b) in enumerate(zip(clean_tokens, corrupted_tokens, strict=True)):
        if len(a) != len(b):
            raise InvalidArgumentError(
                f"pair #{i}: the clean prompt {cleans[i]!r} is {len(a)} tokens and the corrupted "
                f"prompt {corrupts[i]!r} is {len(b)}; patching replaces activations position "
                "by position, so both must have the same number of tokens (corrupt by "
                "swapping a token for one of the same length)"
            )
    lengths = sorted({len(t) for t in clean_tokens})
    if len(lengths) > 1:
        first = next(i for i, t in enumerate(clean_tokens) if len(t) != len(clean_tokens[0]))
        raise InvalidArgumentError(
            f"the pairs have different token lengths ({lengths}: pair #0 {cleans[0]!r} has "
            f"{len(clean_tokens[0])}, pair #{first} {cleans[first]!r} has "
            f"{len(clean_tokens[first])}); the heatmap has one column per position, so every "
            "pair needs the same length: patch each length separately"
        )
    ids = [direction_ids(adapter, a, v) for a, v in zip(answers, versus, strict=True)]
    vs_ids = [b for _, b in ids]
    return _Pairs(
        clean=cleans,
        corrupted=corrupts,
        answers=answers,
        versus=versus,
        clean_tokens=torch.tensor(clean_tokens, dtype=torch.long),
        corrupted_tokens=torch.tensor(corrupted_tokens, dtype=torch.long),
        answer_ids=torch.tensor([a for a, _ in ids]),
        vs_ids=None if vs_ids[0] is None else torch.tensor(vs_ids),
    )


def _positions(positions: Sequence[int] | None, pairs: _Pairs) -> tuple[int, ...]:
    if positions is None:
        return tuple(range(pairs.length))
    if isinstance(positions, (int, str)) or not isinstance(positions, Sequence) or not positions:
        raise InvalidArgumentError(
            f"positions must be a non-empty list of token positions (or None for all), got "
            f"{positions!r}"
        )
    out = tuple(resolve_position(p, pairs.length, pairs.clean[0]) for p in positions)
    if len(set(out)) != len(out):
        raise InvalidArgumentError(
            f"positions {list(positions)} name a position twice (as {list(out)} of "
            f"{pairs.length} tokens); give each position once"
        )
    return out


def _check_count(value: object, role: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise InvalidArgumentError(f"{role} must be an int >= {least}, got {value!r}")
    return value


# -- the runs ---------------------------------------------------------------------------------


def _every(hook: Hook, layer: int) -> HookKey:
    return HookKey(hook, layer, all_positions=True)


def _context(
    adapter: ModelAdapter, site: Site, pairs: _Pairs, positions: tuple[int, ...]
) -> _Context:
    """The clean run (the site's activations) and the corrupted run (every block's input),
    as the two halves of one batch."""
    layers = range(adapter.spec.n_layers)
    n = pairs.count
    site_keys = {_every(SITE_HOOKS[site], layer) for layer in layers}
    resid_keys = {_every(Hook.RESID_PRE, layer) for layer in layers}
    both = forward(
        adapter,
        torch.cat([pairs.clean_tokens, pairs.corrupted_tokens]),
        [pairs.length - 1] * 2 * n,
        site_keys | resid_keys | linear_logit_hooks(adapter.spec),
        prompts=pairs.clean + pairs.corrupted,
    )
    clean, corrupted = _rows(both, slice(0, n)), _rows(both, slice(n, 2 * n))
    return _Context(
        adapter=adapter,
        site=site,
        pairs=pairs,
        positions=positions,
        clean_acts={layer: clean.activations[_every(SITE_HOOKS[site], layer)] for layer in layers},
        corrupted_resid={
            layer: corrupted.activations[_every(Hook.RESID_PRE, layer)] for layer in layers
        },
        clean_logits=direction_logits(clean, pairs.answer_ids, pairs.vs_ids),
        corrupted_logits=direction_logits(corrupted, pairs.answer_ids, pairs.vs_ids),
        magnitude=_magnitude(corrupted, pairs),
    )


def _rows(run: RunResult, rows: slice) -> RunResult:
    """The rows ``rows`` of a run."""
    return RunResult(
        logits=run.logits[rows],
        activations={key: value[rows] for key, value in run.activations.items()},
    )


def _magnitude(run: RunResult, pairs: _Pairs) -> float:
    """Mean ``|logit(answer)| + |logit(vs)|``: the size a forward pass's rounding of the
    metric scales with."""
    logits = linear_logits(run)
    rows = torch.arange(pairs.count)
    size = logits[rows, pairs.answer_ids].abs()
    if pairs.vs_ids is not None:
        size = size + logits[rows, pairs.vs_ids].abs()
    return float(size.mean())


def _cell_run(
    ctx: _Context,
    layer: int,
    cells: Int[Tensor, " rows"],
    pairs: Int[Tensor, " rows"],
    keys: frozenset[HookKey],
) -> RunResult:
    """One pass resumed at block ``layer``: row ``r`` is pair ``pairs[r]`` with cell
    ``cells[r]`` patched (a column of the effects, :data:`CONTROL` or :data:`FULL`)."""
    site, clean = ctx.site, ctx.clean_acts[layer]
    tokens = ctx.pairs.corrupted_tokens[pairs]
    resid = ctx.corrupted_resid[layer][pairs].clone()
    rows = torch.arange(len(cells))
    patched = cells >= 0
    patches: dict[HookKey, Patch] = {}
    if site == "resid_pre":
        at = torch.as_tensor(ctx.positions)[cells[patched]]
        resid[rows[patched], at] = clean[pairs[patched], at]
        full = cells == FULL
        resid[full] = clean[pairs[full]]
    elif site == "z":  # [rows, pos, heads, d_head]: the head at every patched position
        where = torch.as_tensor(ctx.positions)[None, :]
        r, n, h = rows[patched][:, None], pairs[patched][:, None], cells[patched][:, None]
        patches[HookKey(Hook.Z, layer)] = _replacer((r, where, h), clean[n, where, h])
    else:  # attn_out, mlp_out: [rows, pos, d_model] at one position
        at = torch.as_tensor(ctx.positions)[cells[patched]]
        index = (rows[patched], at)
        patches[HookKey(SITE_HOOKS[site], layer)] = _replacer(index, clean[pairs[patched], at])
    dest = [ctx.destination] * len(cells)
    return forward_from(ctx.adapter, layer, resid, tokens, dest, keys, patches=patches)


def _replacer(index: tuple[Tensor, ...], values: Tensor) -> Patch:
    """A patch writing ``values`` at ``index`` of the activation (on its device)."""

    def patch(act: Tensor) -> Tensor:
        out = act.clone()
        out[tuple(i.to(act.device) for i in index)] = values.to(act.device, act.dtype)
        return out

    return patch


def _chunks(total: int, size: int) -> Iterator[slice]:
    for start in range(0, total, size):
        yield slice(start, min(start + size, total))


def _passes(
    ctx: _Context, n_columns: int, batch_size: int
) -> Iterator[tuple[int, list[tuple[int, int, int]]]]:
    """``(offset, rows)`` of every patching pass: a row is ``(layer, column, pair)`` (a
    column of the effects, :data:`CONTROL` or :data:`FULL`), the rows of one pass sharing the
    position they start at and ordered by block; a pass holds at most ``batch_size`` rows of
    the whole length (more of a shorter one)."""
    groups: dict[int, list[tuple[int, int]]] = {}
    for layer in range(ctx.adapter.spec.n_layers):
        for column in range(n_columns):
            groups.setdefault(ctx.offset(column), []).append((layer, column))
        groups.setdefault(ctx.control_offset(layer), []).append((layer, CONTROL))
        if ctx.site == "resid_pre":
            groups.setdefault(0, []).append((layer, FULL))
    length = ctx.pairs.length
    for offset in sorted(groups):
        rows = [
            (layer, column, pair)
            for layer, column in sorted(groups[offset], key=lambda cell: cell[0])
            for pair in range(ctx.pairs.count)
        ]
        size = max(1, batch_size * length // (length - offset))
        for part in _chunks(len(rows), size):
            yield offset, rows[part]


def _cell_batch(
    ctx: _Context, offset: int, rows: list[tuple[int, int, int]], prefix: KeyValues | None
) -> CellBatch:
    """One pass's rows as a :class:`~symtrans.adapter.protocol.CellBatch`: each row's
    residual entering its block (``resid_pre`` patched), the other sites' patches on the rows
    of their block, and the answer's (and vs's) logit to read."""
    site, where, pairs = ctx.site, ctx.positions, ctx.pairs
    layer_of = torch.tensor([r[0] for r in rows])
    column_of = torch.tensor([r[1] for r in rows])
    pair_of = torch.tensor([r[2] for r in rows])
    resid = torch.empty(
        len(rows), pairs.length, ctx.adapter.spec.d_model, dtype=ctx.corrupted_resid[0].dtype
    )
    patches: dict[HookKey, Patch] = {}
    for layer in layer_of.unique().tolist():
        mine = (layer_of == layer).nonzero()[:, 0]  # contiguous: rows are ordered by block
        clean, n, c = ctx.clean_acts[layer], pair_of[mine], column_of[mine]
        resid[mine] = ctx.corrupted_resid[layer][n]
        cells = c >= 0
        r, n, c = mine[cells], n[cells], c[cells]
        if site == "resid_pre":
            at = torch.as_tensor(where)[c]
            resid[r, at] = clean[n, at]
            full = mine[column_of[mine] == FULL]
            resid[full] = clean[pair_of[full]]
            continue
        if not len(r):  # only the control starts here
            continue
        r = r - mine[0]  # a patch sees the rows that start at its block
        if site == "z":  # [rows, pos, heads, d_head]: the head at every patched position
            at = torch.as_tensor(where)[None, :]
            index = (r[:, None], at - offset, c[:, None])
            patches[HookKey(Hook.Z, layer)] = _replacer(index, clean[n[:, None], at, c[:, None]])
        else:  # attn_out, mlp_out: [rows, pos, d_model] at one position
            at = torch.as_tensor(where)[c]
            patches[HookKey(SITE_HOOKS[site], layer)] = _replacer((r, at - offset), clean[n, at])
    answers = pairs.answer_ids[pair_of]
    columns = (
        answers[:, None]
        if pairs.vs_ids is None
        else torch.stack([answers, pairs.vs_ids[pair_of]], dim=1)
    )
    return CellBatch(
        tokens=pairs.corrupted_tokens,
        pairs=pair_of,
        starts=layer_of,
        offset=offset,
        resid=resid,
        patches=patches,
        columns=columns,
        prefix=prefix if offset else None,
    )


def _metrics(ctx: _Context, n_columns: int, batch_size: int) -> np.ndarray:
    """``[n_layers, n_columns + 2]``: the mean metric of every cell, then each block's
    control and (``resid_pre``) its full patch."""
    n_layers = ctx.adapter.spec.n_layers
    totals = torch.zeros(n_layers, n_columns + 2, dtype=ACCUMULATE)
    prefix = None
    if getattr(ctx.adapter, "runs_cells", False) and any(ctx.offset(c) for c in range(n_columns)):
        prefix = cast(ResumableAdapter, ctx.adapter).key_values(ctx.pairs.corrupted_tokens)
    for offset, rows in _passes(ctx, n_columns, batch_size):
        batch = _cell_batch(ctx, offset, rows, prefix)
        logits = forward_cells(ctx.adapter, batch, ctx.pairs.corrupted).to(ACCUMULATE)
        metric = logits[:, 0] if logits.shape[1] == 1 else logits[:, 0] - logits[:, 1]
        column = torch.tensor([r[1] for r in rows])
        slot = torch.where(column >= 0, column, n_columns - 1 - column)  # CONTROL, FULL last
        totals.index_put_((batch.starts, slot), metric, accumulate=True)
    return (totals / ctx.pairs.count).numpy()


# -- the API ----------------------------------------------------------------------------------


def patch(
    model: Any,
    clean: str | Sequence[str],
    corrupted: str | Sequence[str],
    answer: str | Sequence[str],
    vs: str | Sequence[str | None] | None = None,
    site: Site = "resid_pre",
    positions: Sequence[int] | None = None,
    *,
    explain: int = 3,
    split: Split = "heads",
    batch_size: int = 64,
) -> Patching:
    """Seed 003's activation patching of ``site`` for every block and position (or head).

    ``clean`` and ``corrupted``: prompts paired in order (one of each, or equal-length lists),
    every prompt the same number of tokens; ``answer``/``vs``: one for all pairs or one per
    pair. ``positions``: the positions patched (default all; for ``z``, where each head is
    patched, all at once). ``explain``: how many of the largest cells are written as exact
    sums in ``split`` (:meth:`Patching.explain` explains any other). ``batch_size``: rows
    (cell × pair) per forward pass, counted at the prompts' whole length (a pass of cells
    started at a later position, which runs fewer positions, holds proportionally more).
    """
    site = check_site(site)
    split = check_split(split)
    explain = _check_count(explain, "explain", 0)
    batch_size = _check_count(batch_size, "batch_size", 1)
    adapter = resolve(model)
    spec = adapter.spec
    if site == "mlp_out" and not spec.has_mlp:
        raise InvalidArgumentError(
            "site='mlp_out' patches the MLP outputs, but this model has no MLPs (attention "
            "only); use 'resid_pre', 'attn_out' or 'z'"
        )
    pairs = _pairs(adapter, clean, corrupted, answer, vs)
    where = _positions(positions, pairs)
    ctx = _context(adapter, site, pairs, where)
    info = model_info(adapter)
    clean_metric = float(ctx.clean_logits.mean())
    corrupted_metric = float(ctx.corrupted_logits.mean())
    magnitude = ctx.magnitude
    gap = abs(clean_metric - corrupted_metric)
    if not gap > default_tolerance(info.dtype, info.norm, magnitude):
        raise InvalidArgumentError(
            f"the clean and corrupted prompts give the same metric (clean {clean_metric:.12g}, "
            f"corrupted {corrupted_metric:.12g}, difference {gap:.3g}), so the normalised "
            "effect (patched − corrupted) / (clean − corrupted) divides by zero; corrupt the "
            "prompts so that the answer's logit changes (e.g. swap the subject), or choose "
            "another answer or vs"
        )
    n_columns = spec.n_heads if site == "z" else len(where)
    metrics = _metrics(ctx, n_columns, batch_size)
    effects = metrics[:, :n_columns] - corrupted_metric
    result = Patching(
        model=info,
        site=site,
        clean=pairs.clean,
        corrupted=pairs.corrupted,
        answers=pairs.answers,
        versus=pairs.versus,
        token_strings=tuple(adapter.token_strings(pairs.clean_tokens[0].tolist())),
        corrupted_token_strings=tuple(adapter.token_strings(pairs.corrupted_tokens[0].tolist())),
        positions=where,
        destination=ctx.destination,
        effects=effects,
        clean_metric=clean_metric,
        corrupted_metric=corrupted_metric,
        clean_logits=ctx.clean_logits.numpy(),
        corrupted_logits=ctx.corrupted_logits.numpy(),
        controls=metrics[:, n_columns],
        control_positions=tuple(ctx.control_offset(layer) for layer in range(spec.n_layers)),
        full=metrics[:, n_columns + 1] if site == "resid_pre" else None,
        magnitude=magnitude,
    )
    if not explain:
        return result
    explained = tuple(
        _explain(ctx, result, layer, result.column(index), split)
        for layer, index, _, _ in result.top(explain)
    )
    return replace(result, explained=explained)


def explain(
    model: Any, patching: Patching, layer: int, index: int, split: Split = "heads"
) -> PatchExplanation:
    """Cell ``(layer, index)`` of ``patching`` (``index``: a patched position, or a head for
    ``z``) as an exact sum in ``split``; ``model`` is the one ``patching`` came from."""
    split = check_split(split)
    adapter = resolve(model)
    spec = adapter.spec
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < spec.n_layers:
        raise InvalidArgumentError(
            f"layer {layer!r} is not a block of this model; use 0..{spec.n_layers - 1}"
        )
    column = patching.column(index)
    pairs = _pairs(adapter, patching.clean, patching.corrupted, patching.answers, patching.versus)
    ctx = _context(adapter, patching.site, pairs, patching.positions)
    corrupted = float(ctx.corrupted_logits.mean())
    tol = default_tolerance(patching.model.dtype, patching.model.norm, patching.magnitude)
    if abs(corrupted - patching.corrupted_metric) > tol:
        raise InvalidArgumentError(
            f"this model gives the corrupted metric {corrupted:.12g}, the patching has "
            f"{patching.corrupted_metric:.12g}; pass the model (and dtype) it came from"
        )
    return _explain(ctx, patching, layer, column, split)


# -- one cell, explained -----------------------------------------------------------------------


def _layer_of(piece: Piece) -> int:
    """The block a piece's terms belong to (-1: the embedding)."""
    return int(getattr(piece.labels[0], "layer", -1))


def _own_label(site: Site, layer: int, column: int) -> lb.Label:
    if site == "resid_pre":
        return lb.ResidPre(layer)
    if site == "attn_out":
        return lb.AttnOut(layer)
    if site == "mlp_out":
        return lb.MlpOut(layer)
    return lb.HeadOut(layer, column)


def _resid_pre_piece(layer: int) -> Piece:
    return Piece(
        (lb.ResidPre(layer),),
        frozenset({HookKey(Hook.RESID_PRE, layer)}),
        lambda r: r.project(Hook.RESID_PRE, layer),
    )


def explanation_pieces(
    adapter: ModelAdapter, split: Split, site: Site, layer: int, column: int, position: int
) -> list[Piece]:
    """The terms a cell's effect is written in: ``split``'s, with the patched component as
    one whole term. ``resid_pre``: everything before block ``layer`` is ``x^layer_p``;
    otherwise block ``layer`` is written in the finest split that has the component whole
    (``components`` for ``attn_out``/``mlp_out``, ``heads`` for ``z``) where ``split``
    cuts it up or lumps it in."""
    spec = adapter.spec
    given = list(pieces(spec, split, position))
    if site == "resid_pre":
        return [_resid_pre_piece(layer)] + [p for p in given if _layer_of(p) >= layer]
    own = _own_label(site, layer, column)
    if any(own in p.labels for p in given):
        return given
    finer: Split = "heads" if site == "z" else "components"
    block = [p for p in pieces(spec, finer, position) if _layer_of(p) == layer]
    out: list[Piece] = []
    for p in given:
        if _layer_of(p) != layer:
            out.append(p)
        elif not out or _layer_of(out[-1]) != layer:
            out.extend(block)
    return out


def _explain(
    ctx: _Context, patching: Patching, layer: int, column: int, split: Split
) -> PatchExplanation:
    adapter, pairs, dest = ctx.adapter, ctx.pairs, ctx.destination
    terms = explanation_pieces(adapter, split, ctx.site, layer, column, dest)
    keys = {HookKey(Hook.RESID_FINAL), *linear_logit_hooks(adapter.spec)}.union(
        *(p.hooks for p in terms)
    )
    below = {k for k in keys if (0 <= k.layer < layer) or k.hook in (Hook.EMBED, Hook.POS_EMBED)}
    n = pairs.count
    corrupted = forward(adapter, pairs.corrupted_tokens, [dest] * n, keys, prompts=pairs.corrupted)
    resumed = _cell_run(
        ctx, layer, torch.full((n,), column), torch.arange(n), frozenset(keys - below)
    )
    # Below the block the patched run is the corrupted run: its terms are read from there.
    patched = RunResult(
        logits=resumed.logits,
        activations={**{k: corrupted.activations[k] for k in below}, **resumed.activations},
    )
    norm = adapter.spec.norm.to(ACCUMULATE)
    u, b_U = unembed_direction(adapter, pairs.answer_ids, pairs.vs_ids)
    w = norm.read_vector(u)
    constant = norm.constant(u) + b_U

    def inner(run: RunResult) -> tuple[Float[Tensor, "pairs terms"], Float[Tensor, " pairs"]]:
        reading = HostReading(adapter, run, w, dest)
        values = torch.cat([p.values(reading) for p in terms], dim=-1)
        return values, norm.scale(run.activations[HookKey(Hook.RESID_FINAL)].to(ACCUMULATE))

    before, scale = inner(corrupted)
    after, new_scale = inner(patched)
    deltas = ((after - before) / new_scale[:, None]).mean(dim=0)
    scale_change = float((before.sum(dim=-1) * (1 / new_scale - 1 / scale)).mean())
    magnitude = (
        after.abs().sum(dim=-1) / new_scale + before.abs().sum(dim=-1) / scale
    ).mean() + 2 * constant.abs().mean()
    labels = tuple(label for p in terms for label in p.labels)
    return PatchExplanation(
        model=patching.model,
        site=ctx.site,
        layer=layer,
        index=patching.columns[column],
        split=split,
        labels=labels,
        deltas=deltas.numpy(),
        scale_change=scale_change,
        direct=_own_label(ctx.site, layer, column),
        effect=float(patching.effects[layer, column]),
        destination=dest,
        count=n,
        clean_prompt=pairs.clean[0],
        corrupted_prompt=pairs.corrupted[0],
        answer=pairs.answers[0],
        vs=pairs.versus[0],
        token_strings=patching.token_strings,
        corrupted_token_strings=patching.corrupted_token_strings,
        scale=float(scale.mean()),
        patched_scale=float(new_scale.mean()),
        magnitude=float(magnitude),
    )

"""The effective embedding ``W_EE``: block 0 applied to a token on its own.

A token ``t`` alone at position 0, with the positional embedding zeroed, can only attend to
itself (weight 1), so the residual after block 0 is a function of ``t`` alone (seeds 000 and
001 call it ``get_effective_embedding_2``; here it is the model's own forward, exact)::

    W_EE[t]  = W_E[t] + A^0(t) + M^0(t)     A^0(t) = Σ_h v_h(t) W_O^h + b_O  (attends to itself)
    W_EE0[t] = W_E[t] + M^0(t)              (attention=False: A^0 zeroed before M^0 reads it)

``M^0`` is block 0's MLP on what it reads (``ln2(W_E[t] + A^0(t))`` in a sequential block,
``ln2(W_E[t])`` in a parallel one). One forward pass per batch of one-token inputs, with
``hook_pos_embed`` (and, for ``W_EE0``, block 0's ``hook_attn_out``) patched to zero.

In a decomposition (:func:`effective_decomposition`), ``W_EE[t_p]`` replaces the ``embed``
term and every block-0 term it absorbed becomes its :class:`~symtrans.labels.Remainder`, what
the term adds beyond the token on its own: the same split's block-0 terms of the isolated run
are subtracted term by term (a head's, a neuron's, the MLP's), so the terms still add up to
the same logit. ``b_O^0`` and ``b_out^0`` are the same in both runs, so their remainders are
exactly zero: they are left out (``W_EE`` carries them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .. import labels as lb
from ..adapter import resolve
from ..adapter.protocol import Hook, HookKey, ModelAdapter, Patch, RunResult
from ..errors import InvalidArgumentError
from ..kinds import check_split
from ..results.decomposition import Decomposition
from ..trace.evaluate import answer_direction
from ..trace.run import forward
from ..trace.splits import ACCUMULATE, required_hooks, term_inner_products, term_labels

BATCH = 1024  # one-token inputs per forward pass
MODEL_RTOL = 1e-6  # the embed term of d vs the model's: a larger gap means another model


def _zero(x: Tensor) -> Tensor:
    return torch.zeros_like(x)


def isolated_run(
    adapter: ModelAdapter, ids: Tensor, keys: frozenset[HookKey], attention: bool = True
) -> RunResult:
    """One forward pass of every id in ``ids`` (``[k]``) as a one-token input at position 0,
    the positional embedding zeroed (and block 0's attention output, unless ``attention``)."""
    patches: dict[HookKey, Patch] = {}
    if adapter.spec.has_pos_embed:
        patches[HookKey(Hook.POS_EMBED)] = _zero
    if not attention:
        patches[HookKey(Hook.ATTN_OUT, 0)] = _zero
    tokens = ids.reshape(-1, 1).to(torch.long)
    positions = torch.zeros(len(tokens), dtype=torch.long)
    return forward(adapter, tokens, positions, keys, patches=patches)


def _token_ids(adapter: ModelAdapter, tokens: Sequence[int | str] | Tensor | None) -> Tensor:
    """``[k]`` token ids: every id of the vocabulary for ``None``; strings must be one token."""
    n = adapter.d_vocab
    if tokens is None:
        return torch.arange(n)
    if isinstance(tokens, Tensor):
        if tokens.ndim != 1 or tokens.is_floating_point() or tokens.is_complex():
            raise InvalidArgumentError(
                f"tokens must be a 1-D tensor of token ids, got dtype {tokens.dtype} and shape "
                f"{tuple(tokens.shape)}; pass e.g. torch.tensor([17, 42])"
            )
        ids = tokens.detach().cpu().to(torch.long)
    else:
        if isinstance(tokens, (str, bytes)) or not isinstance(tokens, Sequence):
            raise InvalidArgumentError(
                f"tokens must be a list of token ids or single-token strings, got {tokens!r}; "
                "pass e.g. [17, ' Ireland'] (or None for the whole vocabulary)"
            )
        ids = torch.tensor(
            [adapter.single_token(t, "token") if isinstance(t, str) else _int(t) for t in tokens],
            dtype=torch.long,
        )
    if ids.numel() == 0:
        raise InvalidArgumentError("tokens is empty; pass at least one token (None: all of them)")
    bad = ids[(ids < 0) | (ids >= n)]
    if bad.numel():
        raise InvalidArgumentError(
            f"token id {int(bad[0])} is outside the vocabulary (ids 0..{n - 1}); pass ids the "
            "model's tokenizer gives"
        )
    return ids


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidArgumentError(
            f"a token must be an int id or a single-token str, got {value!r}"
        )
    return int(value)


def effective_embedding(
    model: Any, tokens: Sequence[int | str] | Tensor | None = None, attention: bool = True
) -> Tensor:
    """``W_EE[tokens]``, ``[k, d_model]`` float64: the residual after block 0 for each token
    alone at position 0 with no positional embedding (every token when ``tokens`` is None).
    ``attention=False`` zeroes block 0's attention output (``W_EE0 = W_E + MLP0``)."""
    adapter = resolve(model)
    spec = adapter.spec
    ids = _token_ids(adapter, tokens)
    parts = [HookKey(Hook.EMBED)]
    if attention:
        parts.append(HookKey(Hook.ATTN_OUT, 0))
    if spec.has_mlp:
        parts.append(HookKey(Hook.MLP_OUT, 0))
    rows = []
    for chunk in ids.split(BATCH):
        run = isolated_run(adapter, chunk, frozenset(parts), attention)
        rows.append(torch.stack([run.activations[key].to(ACCUMULATE) for key in parts]).sum(0))
    return torch.cat(rows)


def _absorbed(label: lb.Label, attention: bool) -> bool:
    """Whether ``W_EE`` (or ``W_EE0``) holds this term's isolated-token value."""
    if getattr(label, "layer", None) != 0:
        return False
    return attention or isinstance(label, (lb.BlockOut, lb.MlpOut, lb.Neuron, lb.MlpBias))


def effective_decomposition(model: Any, d: Decomposition, attention: bool = True) -> Decomposition:
    """``d`` with ``embed`` replaced by ``W_EE[t_p]`` (``W_EE0`` for ``attention=False``) and
    block 0's terms by what they add beyond the isolated token: the same logit, the same
    total, exact. ``d`` must come straight from :func:`symtrans.decompose` (any split but
    ``"positions"``) with ``model``."""
    if d.split == "positions":
        raise InvalidArgumentError(
            "the effective embedding needs block 0's head terms whole, but split='positions' "
            "splits them by source position, and the isolated token's head output has no "
            "source position in the prompt to be subtracted from; decompose with "
            "split='heads' (or 'layers', 'components', 'neurons') and call "
            "d.effective_embedding(model) on that"
        )
    adapter = resolve(model)
    spec = adapter.spec
    split = check_split(d.split)
    expected = tuple(term_labels(spec, split, 0))
    if d.labels != expected:
        got = ", ".join(str(x) for x in d.labels[:4])
        raise InvalidArgumentError(
            f"the effective embedding rewrites a decomposition straight from st.decompose "
            f"(split={split!r} starts {expected[0]}, {expected[1]}, ...), but this one's terms "
            f"are {got}, ... (already rewritten, or from another model); decompose again and "
            "call it once"
        )
    token = d.tokens[d.position]
    run = isolated_run(adapter, torch.tensor([token]), required_hooks(spec, split), attention)
    w = spec.norm.to(ACCUMULATE).read_vector(answer_direction(adapter, d.answer, d.vs))
    iso = (term_inner_products(adapter, run, split, w[None], 0)[0] / d.scale).cpu().numpy()
    if abs(iso[0] - d.values[0]) > MODEL_RTOL * max(1.0, abs(float(d.values[0]))):
        raise InvalidArgumentError(
            f"the model gives the embed term {iso[0]:.12g} for token {token} but the "
            f"decomposition has {d.values[0]:.12g}; pass the model (and dtype) d came from"
        )
    absorbed = [i for i, label in enumerate(d.labels) if _absorbed(label, attention)]
    biases = {i for i in absorbed if isinstance(d.labels[i], (lb.AttnBias, lb.MlpBias))}
    # W_EE = W_E + the isolated run's block-0 terms; a bias term is the same in both runs.
    ee = float(d.values[0]) + sum(float(d.values[i] if i in biases else iso[i]) for i in absorbed)
    labels: list[lb.Label] = [lb.EffectiveEmbed(attention)]
    values = [ee]
    for i in range(1, len(d.labels)):
        if i in biases:
            continue
        if i in absorbed:
            labels.append(lb.Remainder(d.labels[i]))
            values.append(float(d.values[i] - iso[i]))
        else:
            labels.append(d.labels[i])
            values.append(float(d.values[i]))
    return replace(d, labels=tuple(labels), values=np.array(values, dtype=np.float64))

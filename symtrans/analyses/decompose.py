"""``st.decompose``: model + prompt(s) + answer -> exact decomposition(s), ready to verify."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, overload

import numpy as np
import torch

from ..adapter import model_info, resolve
from ..errors import InvalidArgumentError
from ..kinds import Split, check_split
from ..results.decomposition import BatchDecomposition, Decomposition
from ..trace.evaluate import evaluate_prompts
from ..trace.inputs import direction_ids, per_prompt, resolve_position
from ..trace.splits import check_supported, term_labels


@overload
def decompose(
    model: Any,
    prompt: str,
    answer: str,
    vs: str | None = ...,
    split: Split = ...,
    position: int = ...,
    remote: bool | str = ...,
) -> Decomposition: ...


@overload
def decompose(
    model: Any,
    prompt: Sequence[str],
    answer: str | Sequence[str],
    vs: str | Sequence[str | None] | None = ...,
    split: Split = ...,
    position: int = ...,
    remote: bool | str = ...,
) -> BatchDecomposition: ...


def decompose(
    model: Any,
    prompt: str | Sequence[str],
    answer: str | Sequence[str],
    vs: str | Sequence[str | None] | None = None,
    split: Split = "layers",
    position: int = -1,
    remote: bool | str = False,
) -> Decomposition | BatchDecomposition:
    """Write the model's logit of ``answer`` (minus that of ``vs``) after ``prompt`` at
    ``position`` as an exact sum of terms of the residual stream.

    ``prompt`` may be a list: the result is then a :class:`BatchDecomposition` whose
    ``values`` is ``[batch, terms]``. One forward pass per group of equal-length prompts,
    caching only the activations the split needs.

    ``remote`` (an nnsight ``LanguageModel`` only): ``True`` runs the trace on NDIF, ``"local"``
    runs nnsight's local simulation of it; either way only the read-out projections come back.
    """
    split = check_split(split)
    adapter = resolve(model, remote=remote)
    check_supported(adapter.spec, split)
    single = isinstance(prompt, str)
    prompts: list[str] = [prompt] if isinstance(prompt, str) else list(prompt)
    if not prompts:
        raise InvalidArgumentError("no prompts given; pass a string or a non-empty list")
    answers = per_prompt(answer, len(prompts), "answer")
    versus = per_prompt(vs, len(prompts), "vs")
    info = model_info(adapter)

    tokens = [adapter.tokenize(p) for p in prompts]
    positions = [
        resolve_position(position, len(t), p) for t, p in zip(tokens, prompts, strict=True)
    ]
    ids = [direction_ids(adapter, a, v) for a, v in zip(answers, versus, strict=True)]
    answer_ids = [a for a, _ in ids]
    vs_ids = [b for _, b in ids]
    if split == "positions" and len(set(positions)) > 1:
        raise InvalidArgumentError(
            "split='positions' needs the same destination position in every prompt of a batch "
            f"(got {sorted(set(positions))}); pass prompts of equal length or decompose them "
            "one at a time"
        )

    groups: dict[tuple[int, int, bool], list[int]] = defaultdict(list)
    for i, (t, p) in enumerate(zip(tokens, positions, strict=True)):
        groups[(len(t), p, vs_ids[i] is not None)].append(i)

    results: list[Decomposition | None] = [None] * len(prompts)
    for (_, pos, has_vs), members in groups.items():
        ev = evaluate_prompts(
            adapter,
            [tokens[i] for i in members],
            split,
            torch.tensor([answer_ids[i] for i in members]),
            torch.tensor([vs_ids[i] for i in members]) if has_vs else None,
            pos,
            prompts=[prompts[i] for i in members],
        )
        labels = tuple(term_labels(adapter.spec, split, pos))
        values = ev.values.cpu().numpy()
        for row, i in enumerate(members):
            results[i] = Decomposition(
                model=info,
                prompt=prompts[i],
                tokens=tuple(tokens[i]),
                token_strings=tuple(adapter.token_strings(tokens[i])),
                position=pos,
                answer=answers[i],
                vs=versus[i],
                split=split,
                labels=labels,
                values=np.ascontiguousarray(values[row]),
                beta_term=float(ev.beta_term[row]),
                unembed_bias=float(ev.unembed_bias[row]),
                scale=float(ev.scale[row]),
                model_logit=float(ev.model_logits[row]),
                softcap=adapter.spec.softcap,
                model_output=float(ev.model_outputs[row]),
                rounding=None if ev.rounding is None else float(ev.rounding[row]),
            )
    done = [r for r in results if r is not None]
    return done[0] if single else BatchDecomposition(tuple(done))

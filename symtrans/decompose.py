"""``st.decompose``: model + prompt(s) + answer -> exact, verified-ready decomposition(s)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, overload

import numpy as np
import torch

from .adapter import ModelAdapter, as_adapter
from .decomposition import BatchDecomposition, Decomposition, ModelInfo
from .errors import InvalidArgumentError, NonFiniteError, TokenizationError
from .evaluate import evaluate, first_non_finite
from .splits import Split, check_split, required_hooks, term_labels

_DTYPE_NAMES = {
    torch.float64: "float64",
    torch.float32: "float32",
    torch.float16: "float16",
    torch.bfloat16: "bfloat16",
}


def resolve_model(model: Any) -> ModelAdapter:
    """A model name or path is loaded; a TransformerLens model is wrapped."""
    if isinstance(model, str):
        from .adapter.loading import load_model

        model = load_model(model)
    return as_adapter(model)


def model_info(adapter: ModelAdapter) -> ModelInfo:
    spec = adapter.spec
    cfg = getattr(adapter.model, "cfg", None)
    return ModelInfo(
        name=str(getattr(cfg, "model_name", None) or spec.architecture),
        architecture=spec.architecture,
        n_layers=spec.n_layers,
        n_heads=spec.n_heads,
        d_model=spec.d_model,
        d_mlp=spec.d_mlp,
        norm=spec.norm.kind,
        eps=spec.norm.eps,
        has_gamma=spec.norm.gamma is not None,
        has_beta=spec.norm.beta is not None,
        dtype=_DTYPE_NAMES.get(spec.dtype, str(spec.dtype)),
    )


def _broadcast(value: Any, n: int, role: str) -> list[Any]:
    if value is None or isinstance(value, str):
        return [value] * n
    if isinstance(value, Sequence) and len(value) == n:
        return list(value)
    raise InvalidArgumentError(
        f"{role} must be one string or a list with one entry per prompt ({n}), got {value!r}"
    )


def _resolve_position(position: int, length: int, prompt: str) -> int:
    if not isinstance(position, int) or isinstance(position, bool):
        raise InvalidArgumentError(f"position must be an int, got {position!r}")
    resolved = position + length if position < 0 else position
    if not 0 <= resolved < length:
        raise InvalidArgumentError(
            f"position {position} is out of range for prompt {prompt!r} of {length} tokens; "
            f"use -{length}..{length - 1} (-1 is the last token)"
        )
    return resolved


def direction_ids(adapter: ModelAdapter, answer: str, vs: str | None) -> tuple[int, int | None]:
    """The token ids of ``answer`` and ``vs`` (each must be one token, and not the same)."""
    a = adapter.single_token(answer, "answer")
    b = None if vs is None else adapter.single_token(vs, "vs")
    if b is not None and b == a:
        raise TokenizationError(
            f"answer {answer!r} and vs {vs!r} are the same token (id {a}); their logit "
            "difference is zero by construction. Pick a different vs"
        )
    return a, b


@overload
def decompose(
    model: Any,
    prompt: str,
    answer: str,
    vs: str | None = ...,
    split: Split = ...,
    position: int = ...,
) -> Decomposition: ...


@overload
def decompose(
    model: Any,
    prompt: Sequence[str],
    answer: str | Sequence[str],
    vs: str | Sequence[str | None] | None = ...,
    split: Split = ...,
    position: int = ...,
) -> BatchDecomposition: ...


def decompose(
    model: Any,
    prompt: str | Sequence[str],
    answer: str | Sequence[str],
    vs: str | Sequence[str | None] | None = None,
    split: Split = "layers",
    position: int = -1,
) -> Decomposition | BatchDecomposition:
    """Write the model's logit of ``answer`` (minus that of ``vs``) after ``prompt`` at
    ``position`` as an exact sum of terms of the residual stream.

    ``prompt`` may be a list: the result is then a :class:`BatchDecomposition` whose
    ``values`` is ``[batch, terms]``. One forward pass per group of equal-length prompts,
    caching only the activations the split needs.
    """
    split = check_split(split)
    adapter = resolve_model(model)
    single = isinstance(prompt, str)
    prompts: list[str] = [prompt] if isinstance(prompt, str) else list(prompt)
    if not prompts:
        raise InvalidArgumentError("no prompts given; pass a string or a non-empty list")
    answers = _broadcast(answer, len(prompts), "answer")
    versus = _broadcast(vs, len(prompts), "vs")
    info = model_info(adapter)

    tokens = [adapter.tokenize(p) for p in prompts]
    positions = [
        _resolve_position(position, len(t), p) for t, p in zip(tokens, prompts, strict=True)
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
    keys = required_hooks(adapter.spec, split)
    for (_, pos, has_vs), members in groups.items():
        batch_tokens = torch.tensor([tokens[i] for i in members], dtype=torch.long)
        batch_pos = torch.full((len(members),), pos, dtype=torch.long)
        run = adapter.run(batch_tokens, batch_pos, keys)
        bad = first_non_finite(run)
        if bad is not None:
            where, row = bad
            raise NonFiniteError(
                f"the model's {where} holds NaN or inf for prompt {prompts[members[row]]!r}; "
                "no sum of terms can be exact. Check the weights for NaN/inf (e.g. "
                "torch.isfinite(p).all() for p in model.parameters()) or load the model in "
                "float32/float64 if float16 overflowed"
            )
        ev = evaluate(
            adapter,
            run,
            split,
            torch.tensor([answer_ids[i] for i in members]),
            torch.tensor([vs_ids[i] for i in members]) if has_vs else None,
            pos,
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
            )
    done = [r for r in results if r is not None]
    return done[0] if single else BatchDecomposition(tuple(done))

"""The logit lens, exact: the residual after the embedding and after each block, read
through the final norm with *its own* scale ``σ(x^l_p)``.

Entry ``l`` is ``<c(γ⊙u), x^l_p> / σ(x^l_p) + <β, u> + b_U`` with ``x^0`` the embedding and
``x^{l+1} = x^l + A^l + M^l``; the last entry is the model's own logit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .adapter.protocol import Hook, HookKey
from .decompose import _resolve_position, direction_ids, model_info, resolve_model
from .decomposition import ModelInfo
from .evaluate import ACCUMULATE, unembed_direction
from .report.sheet import Reportable, Sheet


@dataclass(frozen=True, eq=False)
class LogitLens(Reportable):
    prompt: str
    answer: str
    vs: str | None
    position: int
    labels: tuple[str, ...]  # "embed", "0_resid_post", ...
    values: np.ndarray  # [n_layers + 1]
    model_logit: float
    model: ModelInfo
    token_strings: tuple[str, ...]
    scales: np.ndarray  # [n_layers + 1]: σ(x^l_p), each prefix's own scale
    constant: float  # <β, u> + b_U

    @property
    def error(self) -> float:
        """The last entry minus the model's logit: zero up to rounding."""
        return float(self.values[-1]) - self.model_logit

    def sheet(self, use_macros: bool = False) -> Sheet:
        from .report.analyses import lens_sheet

        return lens_sheet(self, use_macros)


def logit_lens(
    model: Any, prompt: str, answer: str, vs: str | None = None, position: int = -1
) -> LogitLens:
    """The logit of ``answer`` (minus ``vs``) read from every prefix of the residual."""
    adapter = resolve_model(model)
    spec = adapter.spec
    tokens = adapter.tokenize(prompt)
    pos = _resolve_position(position, len(tokens), prompt)
    a, b = direction_ids(adapter, answer, vs)
    keys = {HookKey(Hook.EMBED)} | {HookKey(Hook.ATTN_OUT, layer) for layer in range(spec.n_layers)}
    if spec.has_pos_embed:
        keys.add(HookKey(Hook.POS_EMBED))
    if spec.has_mlp:
        keys |= {HookKey(Hook.MLP_OUT, layer) for layer in range(spec.n_layers)}
    run = adapter.run(torch.tensor([tokens]), torch.tensor([pos]), frozenset(keys))
    acts = {k: v[0].to(ACCUMULATE) for k, v in run.activations.items()}

    directions, biases = unembed_direction(
        adapter, torch.tensor([a]), None if b is None else torch.tensor([b])
    )
    u = directions[0]
    norm = spec.norm.to(ACCUMULATE)
    w = norm.read_vector(u)
    constant = float(norm.constant(u)) + float(biases[0])

    x = acts[HookKey(Hook.EMBED)]
    if spec.has_pos_embed:
        x = x + acts[HookKey(Hook.POS_EMBED)]
    prefixes = [x]
    for layer in range(spec.n_layers):
        x = x + acts[HookKey(Hook.ATTN_OUT, layer)]
        if spec.has_mlp:
            x = x + acts[HookKey(Hook.MLP_OUT, layer)]
        prefixes.append(x)
    stack = torch.stack(prefixes)  # [n_layers + 1, d_model]
    scales = norm.scale(stack)
    values = (stack @ w) / scales + constant
    logits = run.logits[0].to(ACCUMULATE)
    model_logit = float(logits[a] - (logits[b] if b is not None else 0))
    labels = ("embed",) + tuple(f"{layer}_resid_post" for layer in range(spec.n_layers))
    return LogitLens(
        prompt=prompt,
        answer=answer,
        vs=vs,
        position=pos,
        labels=labels,
        values=values.numpy(),
        model_logit=model_logit,
        model=model_info(adapter),
        token_strings=tuple(adapter.token_strings(tokens)),
        scales=scales.numpy(),
        constant=constant,
    )

"""The logit lens, exact: the residual after the embedding and after each block, read
through the final norm with *its own* scale ``σ(x^l_p)``.

Entry ``l`` is ``<c(γ⊙u), x^l_p> / σ(x^l_p) + <β, u> + b_U`` with ``x^0`` the embedding and
``x^{l+1} = x^l + A^l + M^l``; the last entry is the model's own logit.
"""

from __future__ import annotations

from typing import Any

import torch

from ..adapter import model_info, resolve
from ..adapter.protocol import Hook, HookKey
from ..results.lens import LogitLens
from ..trace.evaluate import direction_logits, unembed_direction
from ..trace.inputs import direction_ids, resolve_position
from ..trace.run import forward
from ..trace.splits import ACCUMULATE, linear_logit_hooks


def logit_lens(
    model: Any, prompt: str, answer: str, vs: str | None = None, position: int = -1
) -> LogitLens:
    """The logit of ``answer`` (minus ``vs``) read from every prefix of the residual."""
    adapter = resolve(model)
    spec = adapter.spec
    tokens = adapter.tokenize(prompt)
    pos = resolve_position(position, len(tokens), prompt)
    a, b = direction_ids(adapter, answer, vs)
    # The residual stream itself, before block 0 and after each block: exact for any block
    # layout (post-norms, multipliers, parallel blocks alike).
    keys = {HookKey(Hook.RESID_PRE, 0)} | {
        HookKey(Hook.RESID_POST, layer) for layer in range(spec.n_layers)
    }
    keys |= linear_logit_hooks(spec)  # the lens reads the logit before any cap
    run = forward(adapter, [tokens], [pos], keys, prompts=[prompt])
    acts = {k: v[0].to(ACCUMULATE) for k, v in run.activations.items()}

    answer_ids = torch.tensor([a])
    vs_ids = None if b is None else torch.tensor([b])
    directions, biases = unembed_direction(adapter, answer_ids, vs_ids)
    u = directions[0]
    norm = spec.norm.to(ACCUMULATE)
    w = norm.read_vector(u)
    constant = float(norm.constant(u)) + float(biases[0])

    prefixes = [acts[HookKey(Hook.RESID_PRE, 0)]]
    prefixes += [acts[HookKey(Hook.RESID_POST, layer)] for layer in range(spec.n_layers)]
    stack = torch.stack(prefixes)  # [n_layers + 1, d_model]
    scales = norm.scale(stack)
    values = (stack @ w) / scales + constant
    labels = ("embed",) + tuple(f"{layer}_resid_post" for layer in range(spec.n_layers))
    return LogitLens(
        prompt=prompt,
        answer=answer,
        vs=vs,
        position=pos,
        labels=labels,
        values=values.numpy(),
        model_logit=float(direction_logits(run, answer_ids, vs_ids)[0]),
        model=model_info(adapter),
        token_strings=tuple(adapter.token_strings(tokens)),
        scales=scales.numpy(),
        constant=constant,
    )

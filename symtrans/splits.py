"""The splits of the residual stream: which terms, in model order, and which hooks they need.

Every split is an exact sum: ``x^L_p = Σ_i t_i`` for the terms it lists.
"""

from __future__ import annotations

from typing import Literal

from . import labels as lb
from .adapter.protocol import Hook, HookKey, ModelSpec
from .errors import InvalidArgumentError

Split = Literal["layers", "components", "heads", "neurons", "positions"]
SPLITS: tuple[Split, ...] = ("layers", "components", "heads", "neurons", "positions")

_DESCRIPTIONS = {
    "layers": "the embedding and one term per block (Δx^l = A^l + M^l)",
    "components": "the embedding, then the attention and MLP output of every block",
    "heads": "the embedding, every head's output, b_O, and every MLP output",
    "neurons": "the embedding, every attention output, every MLP neuron and b_out",
    "positions": "the embedding, every head's output from every source position, b_O, MLPs",
}


def check_split(split: object) -> Split:
    if split not in SPLITS:
        options = "; ".join(f"{s!r}: {d}" for s, d in _DESCRIPTIONS.items())
        raise InvalidArgumentError(f"unknown split {split!r}; choose one of {options}")
    return split


def required_hooks(spec: ModelSpec, split: Split) -> frozenset[HookKey]:
    """Exactly the activations ``split`` needs, and the final residual (for ``σ``)."""
    keys = {HookKey(Hook.EMBED), HookKey(Hook.RESID_FINAL)}
    if spec.has_pos_embed:
        keys.add(HookKey(Hook.POS_EMBED))
    for layer in range(spec.n_layers):
        if split in ("layers", "components", "neurons"):
            keys.add(HookKey(Hook.ATTN_OUT, layer))
        elif split == "heads":
            keys.add(HookKey(Hook.Z, layer))
        else:  # positions
            keys.update({HookKey(Hook.PATTERN, layer), HookKey(Hook.V, layer)})
        if spec.has_mlp:
            if split == "neurons":
                keys.add(HookKey(Hook.MLP_POST, layer))
            else:
                keys.add(HookKey(Hook.MLP_OUT, layer))
    return frozenset(keys)


def term_labels(spec: ModelSpec, split: Split, position: int) -> list[lb.Label]:
    """The labels of ``split``'s terms in model order (embedding first, then block by block)."""
    out: list[lb.Label] = [lb.Embed()]
    if spec.has_pos_embed:
        out.append(lb.PosEmbed())
    for layer in range(spec.n_layers):
        if split == "layers":
            out.append(lb.BlockOut(layer))
            continue
        if split in ("components", "neurons"):
            out.append(lb.AttnOut(layer))
        elif split == "heads":
            out.extend(lb.HeadOut(layer, h) for h in range(spec.n_heads))
            out.append(lb.AttnBias(layer))
        else:
            out.extend(
                lb.HeadSource(layer, h, s) for h in range(spec.n_heads) for s in range(position + 1)
            )
            out.append(lb.AttnBias(layer))
        if spec.has_mlp:
            if split == "neurons":
                out.extend(lb.Neuron(layer, n) for n in range(spec.d_mlp))
                out.append(lb.MlpBias(layer))
            else:
                out.append(lb.MlpOut(layer))
    return out

"""Plain enumerations every layer shares, without torch: the kind of norm, the splits, and
the names of the dtypes a model may run in."""

from __future__ import annotations

import enum
from typing import Literal

from .errors import InvalidArgumentError


class NormKind(enum.Enum):
    """The final norm's arithmetic: LayerNorm centres and has a bias, RMSNorm does neither."""

    LAYER = "layernorm"
    RMS = "rmsnorm"


Split = Literal["layers", "components", "heads", "neurons", "positions"]
SPLITS: tuple[Split, ...] = ("layers", "components", "heads", "neurons", "positions")

SPLIT_DESCRIPTIONS: dict[Split, str] = {
    "layers": "the embedding and one term per block (Δx^l = A^l + M^l)",
    "components": "the embedding, then the attention and MLP output of every block",
    "heads": "the embedding, every head's output, b_O, and every MLP output",
    "neurons": "the embedding, every attention output, every MLP neuron and b_out",
    "positions": "the embedding, every head's output from every source position, b_O, MLPs",
}


def check_split(split: object) -> Split:
    """``split`` if it names a split, else :class:`InvalidArgumentError` listing them."""
    if split not in SPLITS:
        options = "; ".join(f"{s!r}: {d}" for s, d in SPLIT_DESCRIPTIONS.items())
        raise InvalidArgumentError(f"unknown split {split!r}; choose one of {options}")
    return split


Site = Literal["resid_pre", "attn_out", "mlp_out", "z"]
SITES: tuple[Site, ...] = ("resid_pre", "attn_out", "mlp_out", "z")

SITE_DESCRIPTIONS: dict[Site, str] = {
    "resid_pre": "the residual stream entering each block, per layer × position",
    "attn_out": "each block's attention output, per layer × position",
    "mlp_out": "each block's MLP output, per layer × position",
    "z": "each head's z (its output before W_O) at every position, per layer × head",
}


def check_site(site: object) -> Site:
    """``site`` if it names a patching site, else :class:`InvalidArgumentError` listing them."""
    if site not in SITES:
        options = "; ".join(f"{s!r}: {d}" for s, d in SITE_DESCRIPTIONS.items())
        raise InvalidArgumentError(f"unknown site {site!r}; choose one of {options}")
    return site


DTypeName = Literal["float64", "float32", "float16", "bfloat16"]
DTYPES: tuple[DTypeName, ...] = ("float64", "float32", "float16", "bfloat16")

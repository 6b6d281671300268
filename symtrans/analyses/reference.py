"""Checking a result against the original model: Hugging Face's own forward pass, loaded
afresh from where the wrapped model came from (``d.verify(reference="hf")``).

:func:`symtrans.load_model` probes the original module before TransformerLens wraps it; a
bridge or HookedTransformer passed in by the user was not probed, so its logit is compared
here with the original model's on the decomposition's own tokens (this loads a second copy of
the weights)."""

from __future__ import annotations

from ..adapter.fidelity import reference_outputs
from ..adapter.loading import parse_dtype
from ..errors import InvalidArgumentError
from ..results.claims import Claim
from ..results.decomposition import BatchDecomposition, Decomposition

REFERENCES = ("hf",)


def reference_claims(result: object, reference: str) -> tuple[Claim, ...]:
    """The claims that ``result``'s model logits are the original model's."""
    if reference not in REFERENCES:
        raise InvalidArgumentError(
            f"unknown reference {reference!r}; use reference='hf' (Hugging Face's own forward "
            "pass of the original model)"
        )
    if isinstance(result, BatchDecomposition):
        return tuple(claim for d in result for claim in reference_claims(d, reference))
    if not isinstance(result, Decomposition):
        raise InvalidArgumentError(
            f"verify(reference='hf') checks decompositions and batches of them, not a "
            f"{type(result).__name__}; check the decomposition it came from"
        )
    d = result
    if not d.model.source:
        raise InvalidArgumentError(
            "the original Hugging Face model of this decomposition is not reachable (its "
            "config names no folder or hub name); load the model with st.load_model(path), "
            "which checks it against the original when it loads"
        )
    outputs = reference_outputs(
        d.model.source,
        parse_dtype(d.model.dtype),
        list(d.tokens),
        d.position,
        d.answer,
        d.vs,
    )
    ours = d.model_output if d.model_output is not None else d.model_logit
    name = min(outputs, key=lambda k: abs(outputs[k] - ours))
    return (
        Claim(
            subject=f"prompt {d.prompt!r} at position {d.position}, direction {d.direction}",
            what="the wrapped model's logit",
            value=ours,
            against=f"Hugging Face's own forward pass of {d.model.source!r} ({name} attention)",
            reference=outputs[name],
            magnitude=abs(outputs[name]),
            dtype=d.model.dtype,
            norm=d.model.norm,
            float32_norms=d.model.float32_norms,
            rounding=d.rounding,
        ),
    )


__all__ = ["reference_claims"]

"""Why symtrans exists: TransformerLens's own ``decompose_resid`` + ``logit_attrs`` leave out
the final norm's γ and β and the unembedding bias, so on an unfolded model their parts do not
add up to the logit (upstream issues 523 and 472). symtrans's do, on the same cache."""

from __future__ import annotations

import pytest
import torch

import symtrans as st

from .conftest import PROMPT


@pytest.mark.parametrize("name", ["random-gpt2", "random-neox"])
def test_transformerlens_decomposition_misses_the_logit(bridge, name):
    model = bridge(name, torch.float64)
    tokens = model.to_tokens(PROMPT)
    answer = model.to_single_token(" Ireland")
    logits, cache = model.run_with_cache(tokens)
    stack = cache.decompose_resid(apply_ln=True, pos_slice=-1)
    tl_total = float(cache.logit_attrs(stack, tokens=answer, pos_slice=-1).sum())
    logit = float(logits[0, -1, answer])
    assert abs(tl_total - logit) > 1e-2, "TransformerLens now adds up: revisit this test"

    d = st.decompose(model, PROMPT, answer=" Ireland", split="components")
    assert abs(d.total - logit) <= 1e-10
    assert [str(t.label) for t in d.terms] == [
        "embed",
        *(["pos_embed"] if d.model.architecture == "gpt2" else []),
        *[f"{layer}_{c}" for layer in range(d.model.n_layers) for c in ("attn_out", "mlp_out")],
    ]

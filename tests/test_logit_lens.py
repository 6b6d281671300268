"""The exact logit lens against Hugging Face's hidden states, each under the final norm
with its own scale."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import symtrans as st

from . import reference
from .conftest import PROMPT


@pytest.mark.parametrize("name", ["random-gpt2", "random-neox", "tiny-capitals"])
@pytest.mark.parametrize("vs", [None, " France"])
def test_logit_lens_matches_hidden_states(bridge, hf_model, name, vs):
    model = bridge(name)
    ll = st.logit_lens(model, PROMPT, answer=" Ireland", vs=vs)
    hf = hf_model(name)
    tokens = model.to_tokens(PROMPT)[0].tolist()
    out = reference.forward(hf, tokens)
    norm = reference.final_norm(hf)
    W = hf.get_output_embeddings()
    a = model.to_single_token(" Ireland")
    b = None if vs is None else model.to_single_token(vs)
    points = torch.cat([out["resid_pre"][:, -1], out["resid_final"][-1][None]])
    logits = W(norm(points))
    expected = logits[:, a] - (logits[:, b] if b is not None else 0)
    assert len(ll.values) == model.cfg.n_layers + 1
    np.testing.assert_allclose(ll.values, expected.numpy(), rtol=0, atol=1e-10)
    assert ll.values[-1] == pytest.approx(ll.model_logit, abs=1e-10)

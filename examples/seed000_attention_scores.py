"""Seed 000, exact: a head's attention score to BOS as query-term x key-term pieces.

Seed 000 asks why GPT-2's head 10.7 attends to BOS: it compares the head's query bias b_Q
with the key of the BOS token, computed from the plain embedding W_E, from the effective
embedding W_EE (block 0 applied to the token alone), from W_EE0 (block 0's MLP only) and
from W_EE - W_E, by cosine similarity, then with the BOS key the model actually computes,
and with keys at later positions. This script does the same with symtrans on the embedded
GPT-2 model, whose tokenizer puts BOS at position 0: it picks the layer-1 head that attends
most to BOS from the last position of "Dublin is the capital city of", writes that head's
pre-softmax score (last position -> BOS) as an exact sum of (query term, key term) pieces,
checked against the model's own score, reads the cosine of b_Q with each key piece, repeats
the seed's W_E / W_EE / W_EE0 comparison with ``st.effective_embedding``, compares the key at
every position, and rewrites the logit of " Ireland" with the effective embedding in place of
the token embedding (the same total, exact).

The W_E / W_EE keys are, as in the seed, the linear part of the key map applied to one vector
(``gamma1 ⊙ c(x) W_K``; the norm's scale does not change a cosine, and beta1 and b_K are
left out as the seed's folded model leaves them out); everything else is the model's own.

    .venv/bin/python examples/seed000_attention_scores.py [-o DIR] [--pdf]

Writes into DIR (default ``examples-out/seed000_attention_scores``): ``scores.{md,tex,html}``
(the score's pieces), ``effective.{md,tex,html}`` (the logit with W_EE), ``.pdf`` too with
``--pdf``, and ``summary.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

import symtrans as st
from symtrans.labels import Embed, QueryBias
from symtrans.models.facts import DEMO_ANSWER, DEMO_PROMPT
from symtrans.results.scores import cosine

MODEL = "tiny-capitals"  # GPT-2 architecture: BOS at position 0, learned positions
LAYER = 1


@torch.no_grad()
def bos_attention(model: Any, prompt: str, layer: int) -> np.ndarray:
    """Each head's attention from the last position to position 0 (the model's own)."""
    _, cache = model.run_with_cache(model.to_tokens(prompt))
    return cache[f"blocks.{layer}.attn.hook_pattern"][0, :, -1, 0].double().numpy()


@torch.no_grad()
def key_direction(model: Any, x: torch.Tensor, layer: int, head: int) -> np.ndarray:
    """``gamma1 ⊙ c(x) W_K``: the direction of the key that the vector ``x`` alone gives."""
    gamma = model.blocks[layer].ln1.original_component.weight.double()
    c = x.double() - x.double().mean()
    return ((gamma * c) @ model.W_K[layer, head].double()).numpy()


def write_reports(report: Any, out: Path, stem: str, pdf: bool) -> list[str]:
    """``stem.md``, ``.tex``, ``.html`` (and ``.pdf``) of a decomposition or an analysis."""
    suffixes = ("md", "tex", "html", "pdf") if pdf else ("md", "tex", "html")
    return [report.save(out / f"{stem}.{suffix}") for suffix in suffixes]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-o", "--out", default="examples-out/seed000_attention_scores")
    parser.add_argument("--pdf", action="store_true", help="also write PDFs (needs LaTeX)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    model = st.load_model(MODEL, dtype=torch.float64)
    tokens = model.to_str_tokens(DEMO_PROMPT)

    to_bos = bos_attention(model, DEMO_PROMPT, LAYER)
    head = int(np.argmax(to_bos))
    print(
        f"{DEMO_PROMPT!r} ({len(tokens)} tokens, {tokens[0]!r} first): attention from the last "
        f"position to BOS in layer {LAYER}: "
        + ", ".join(f"L{LAYER}H{h} {a:.2f}" for h, a in enumerate(to_bos))
    )

    # The score last -> BOS as a sum of (query term, key term) pieces.
    s = st.attention_scores(model, DEMO_PROMPT, layer=LAYER, head=head, query_pos=-1, key_pos=0)
    s.verify()
    b_Q = QueryBias(LAYER, head)
    print(
        f"L{LAYER}H{head} score {s.query_pos}->{s.key_pos}: {s.total:.10f} = sum of "
        f"{s.values.size} pieces; the model's {s.model_score:.10f} (difference {s.error:.1e})"
    )
    for q, k, value in s.top(4):
        print(f"  {str(q):>16} x {str(k):<16} {value:+.4f}")
    bias_row = float(s.values[s.query_labels.index(b_Q)].sum())
    print(f"  b_Q against the whole BOS key: {bias_row:+.4f} of the score")
    print("cosine of b_Q with each piece of the BOS key:")
    piece_cos = {str(k): s.cosine(b_Q, k) for k in s.key_labels}
    for name, value in piece_cos.items():
        print(f"  {name:>16}  {value:+.3f}")
    bos_key = s.key_pieces.sum(0)
    actual = cosine(s.query_pieces[s.query_labels.index(b_Q)], bos_key)
    print(f"  {'the whole key':>16}  {actual:+.3f}")

    # Seed 000's comparison: keys from W_E, W_EE, W_EE0 and W_EE - W_E of the BOS token.
    bos = model.to_tokens(DEMO_PROMPT)[0, 0].item()
    W_E = model.W_E[bos].detach().double()
    W_EE = st.effective_embedding(model, [bos])[0]
    W_EE0 = st.effective_embedding(model, [bos], attention=False)[0]
    b_Q_vector = model.b_Q[LAYER, head].detach().double().numpy()
    embeddings = {"W_E": W_E, "W_EE": W_EE, "W_EE0": W_EE0, "W_EE - W_E": W_EE - W_E}
    embedding_cos = {
        name: cosine(key_direction(model, x, LAYER, head), b_Q_vector)
        for name, x in embeddings.items()
    }
    print("cosine of b_Q with the key of BOS's ... (seed 000's table)")
    for name, value in embedding_cos.items():
        print(f"  {name:>16}  {value:+.3f}")
    # W_E's key by hand is the score's own embed piece at BOS (up to the norm's scale).
    if not abs(embedding_cos["W_E"] - s.cosine(b_Q, Embed())) <= 1e-9:
        raise st.IdentityError("the key of W_E by hand is not the score's embed piece")

    # ... and the key at every position, as the model computes it (seed: positions 0..39).
    print("the score from the last position to each key position (pieces add up at each):")
    by_position = []
    for key_pos in range(len(tokens)):
        sk = st.attention_scores(
            model, DEMO_PROMPT, layer=LAYER, head=head, query_pos=-1, key_pos=key_pos
        ).verify()
        row = float(sk.values[sk.query_labels.index(b_Q)].sum())
        cos = cosine(sk.query_pieces[sk.query_labels.index(b_Q)], sk.key_pieces.sum(0))
        by_position.append({"token": tokens[key_pos], "score": sk.total, "b_Q": row, "cos": cos})
        print(
            f"  {key_pos} {tokens[key_pos]!r:>16}: score {sk.total:+.3f}, of which b_Q "
            f"{row:+.3f}; cos(b_Q, key) {cos:+.3f}"
        )

    # The logit with the effective embedding in place of the token embedding.
    d = st.decompose(model, DEMO_PROMPT, answer=DEMO_ANSWER, split="heads").verify()
    effective = d.effective_embedding(model).verify()
    ee = next(t for t in effective.terms if t.name == "W_EE")
    print(
        f"logit of {DEMO_ANSWER!r}: {effective.total:.10f} (model {effective.model_logit:.10f}); "
        f"embed {d.terms[0].value:+.4f} becomes W_EE {ee.value:+.4f}"
    )

    written = write_reports(s, out, "scores", args.pdf)
    written += write_reports(effective, out, "effective", args.pdf)
    summary = {
        "model": MODEL,
        "prompt": DEMO_PROMPT,
        "head": f"L{LAYER}H{head}",
        "attention_to_bos": to_bos.tolist(),
        "score": s.total,
        "model_score": s.model_score,
        "b_Q_part": bias_row,
        "cos_pieces": piece_cos,
        "cos_whole_key": actual,
        "cos_embeddings": embedding_cos,
        "by_position": by_position,
        "logit": effective.model_logit,
        "effective_total": effective.total,
        "W_EE_term": ee.value,
        "written": written,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print("wrote", ", ".join(written), "and", out / "summary.json")
    return summary


if __name__ == "__main__":
    main()

"""The gallery in ``examples/``: each seed script runs as a user would run it, writes the
reports it promises, and one of its numbers matches an independent computation (Hugging
Face's own forward pass, or the attention-only model written out from its weights)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from symtrans.models import EMBEDDED_MODELS
from symtrans.models.facts import CAPITALS, DEMO_ANSWER, DEMO_PROMPT, fact_prompt

from . import arch_models as am
from . import reference, reference_patching

SITES = ("resid_pre", "attn_out", "mlp_out", "z")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
FORMATS = ("md", "tex", "html")
TESTED = {
    "seed000_attention_scores",
    "seed001_projection",
    "seed002_skip_trigrams",
    "seed003_logit_lens",
    "seed004_decomposition",
}


def run_example(stem: str, out: Path, *args: str) -> dict[str, Any]:
    """Run ``examples/<stem>.py -o out``; return its summary.json after the common checks."""
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{stem}.py"), "-o", str(out), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    for path in summary["written"]:
        assert Path(path).parent == out and Path(path).stat().st_size > 0, path
    assert f"wrote {out}" in proc.stdout
    summary["stdout"] = proc.stdout
    return summary


def expect_reports(out: Path, *stems: str) -> None:
    for stem in stems:
        for fmt in FORMATS:
            path = out / f"{stem}.{fmt}"
            assert path.is_file() and path.stat().st_size > 0, path
        assert "\\begin{document}" in (out / f"{stem}.tex").read_text()


def hf(name: str) -> Any:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(EMBEDDED_MODELS[name].path, dtype=torch.float64)


def hf_tokens(name: str, prompt: str) -> list[int]:
    """The prompt's ids as the bridge gives them: GPT-2's TransformerLens prepends BOS."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(EMBEDDED_MODELS[name].path)
    ids = tok(prompt)["input_ids"]
    return [tok.bos_token_id, *ids] if name == "tiny-capitals" else ids


def gpt2_head(model: Any, x: torch.Tensor, layer: int, head: int) -> dict[str, Any]:
    """Hugging Face GPT-2 block ``layer``'s head written out: ``x`` is the block's input
    ``[pos, d_model]``; queries, keys, scores ``[pos, pos]`` and the head's output."""
    block = model.transformer.h[layer]
    d_model, n_heads = x.shape[-1], model.config.n_head
    d_head = d_model // n_heads
    qkv = block.ln_1(x) @ block.attn.c_attn.weight + block.attn.c_attn.bias
    cols = slice(head * d_head, (head + 1) * d_head)
    q, k, v = (qkv[:, i * d_model :][:, cols] for i in range(3))
    scores = q @ k.T / d_head**0.5
    n = len(x)
    pattern = torch.softmax(scores.masked_fill(torch.ones(n, n).triu(1).bool(), -torch.inf), -1)
    out = (pattern @ v) @ block.attn.c_proj.weight[cols]
    return {"scores": scores, "pattern": pattern, "out": out}


def test_every_seed_script_is_tested():
    assert {p.stem for p in EXAMPLES.glob("seed*.py")} == TESTED


@torch.no_grad()
def test_seed000_attention_scores(tmp_path: Path):
    s = run_example("seed000_attention_scores", tmp_path)
    expect_reports(tmp_path, "scores", "effective")
    layer, head = 1, int(s["head"][-1])
    model = hf("tiny-capitals")
    fwd = reference.forward(model, hf_tokens("tiny-capitals", DEMO_PROMPT))
    ref = gpt2_head(model, fwd["resid_pre"][layer], layer, head)
    assert abs(s["score"] - float(ref["scores"][-1, 0])) < 1e-10
    assert s["attention_to_bos"][head] == pytest.approx(float(ref["pattern"][-1, 0]), abs=1e-10)
    answer = hf_tokens("tiny-capitals", DEMO_ANSWER)[-1]
    assert abs(s["effective_total"] - float(fwd["logits"][-1, answer])) < 1e-10


@torch.no_grad()
def test_seed001_projection(tmp_path: Path):
    s = run_example("seed001_projection", tmp_path, "--prompts", "2")
    expect_reports(tmp_path, "projection")
    expect_reports(tmp_path, "decomposition")
    assert (
        "Logit and loss when the head writes only part" in (tmp_path / "projection.md").read_text()
    )
    assert (tmp_path / "heads.md").read_text().count("| `L") == 8
    # The head ablated from x^L_p, scale recomputed, written out with Hugging Face.
    layer, head = int(s["head"][1]), int(s["head"][3])
    model = hf("tiny-capitals")
    fwd = reference.forward(model, hf_tokens("tiny-capitals", DEMO_PROMPT))
    h = gpt2_head(model, fwd["resid_pre"][layer], layer, head)["out"][-1]
    x = fwd["resid_final"][-1] - h
    logits = model.lm_head(model.transformer.ln_f(x))
    answer = hf_tokens("tiny-capitals", DEMO_ANSWER)[-1]
    ablated = s["effects"]["ablated"]["logit_renormalized"]
    assert abs(ablated - float(logits[answer])) < 1e-10
    assert abs(s["ablate_renormalized"] - ablated) < 1e-10


@torch.no_grad()
def test_seed002_skip_trigrams(tmp_path: Path):
    # The real training, default steps; with PDFs: a one-layer model's head heatmap is a
    # single row, which once failed to compile.
    s = run_example("seed002_skip_trigrams", tmp_path, "--pdf")
    expect_reports(tmp_path, "heads", "positions", "paths")
    for stem in ("heads", "positions", "paths"):
        assert (tmp_path / f"{stem}.pdf").read_bytes().startswith(b"%PDF")
    assert s["signal_accuracy"] >= 0.95, s["signal_accuracy"]
    assert "accuracy" in s["stdout"] and "on signal examples" in s["stdout"]
    # The saved model, reloaded, written out from its weights with no TransformerLens code.
    spec = importlib.util.spec_from_file_location("seed002", EXAMPLES / "seed002_skip_trigrams.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.load_model(tmp_path / "model")
    tokens = [int(t) for t in s["prompt"].split()]
    logits = reference.attn_only_logits(am.attn_only_weights(model), tokens)
    assert abs(s["logit"] - float(logits[-1, int(s["answer"])])) < 1e-10
    assert abs(s["total"] - float(logits[-1, int(s["answer"])])) < 1e-10


@torch.no_grad()
def test_seed003_logit_lens(tmp_path: Path):
    s = run_example("seed003_logit_lens", tmp_path)
    expect_reports(tmp_path, "lens", "heads", "layers")
    assert s["count"] == len(CAPITALS)
    model = hf("tiny-capitals")
    ids = torch.tensor([hf_tokens("tiny-capitals", fact_prompt(city)) for city, _ in CAPITALS])
    logits = model(ids).logits[:, -1]  # every prompt is one length: one batch
    a = [hf_tokens("tiny-capitals", t)[-1] for t in s["answers"]]
    b = [hf_tokens("tiny-capitals", t)[-1] for t in s["wrong"]]
    rows = torch.arange(len(ids))
    diffs = (logits[rows, a] - logits[rows, b]).tolist()
    mean = sum(diffs) / len(diffs)
    assert abs(s["model_logit_mean"] - mean) < 1e-10
    assert abs(s["total_mean"] - mean) < 1e-10
    assert abs(s["lens"]["1_resid_post"] - diffs[0]) < 1e-10  # the lens ends at the logit
    assert abs(s["seed_recipe_mean"] - mean) > 1.0  # the seed's recipe misses it
    # Patching: the city swapped. One cell against Hugging Face's own patching with hooks.
    expect_reports(tmp_path, *(f"patching-{site}" for site in SITES))
    clean = ids
    corrupted = torch.tensor([hf_tokens("tiny-capitals", p) for p in s["corrupted"]])
    a, b = torch.tensor(a), torch.tensor(b)
    base = reference_patching.metric(model, corrupted, a, b)
    patched = reference_patching.patched_metric(model, clean, corrupted, a, b, "resid_pre", 1, 6)
    resid = s["patching"]["resid_pre"]
    assert abs(resid["clean_metric"] - mean) < 1e-10
    assert abs(resid["corrupted_metric"] - base) < 1e-10
    assert abs(resid["effects"][1][6] - (patched - base)) < 1e-9
    assert abs(resid["effects"][1][6]) > 1.0  # the last position carries the fact by block 1
    for site in SITES:
        for e in s["patching"][site]["explained"]:
            assert abs(e["total"] - e["effect"]) < 1e-9
            assert (
                e["effect"]
                == s["patching"][site]["effects"][e["layer"]][
                    e["index"]
                    if site == "z"
                    else s["patching"][site]["positions"].index(e["index"])
                ]
            )
    assert "found: block 0's input carries the fact at position 1" in s["stdout"]


@torch.no_grad()
def test_seed004_decomposition(tmp_path: Path):
    s = run_example("seed004_decomposition", tmp_path)
    expect_reports(tmp_path, "components", "neurons")
    assert (tmp_path / "symtrans.sty").is_file()
    assert "\\begin{document}" not in (tmp_path / "components.fragment.tex").read_text()
    model = hf("tiny-capitals-neox")
    ids = hf_tokens("tiny-capitals-neox", DEMO_PROMPT)
    a = hf_tokens("tiny-capitals-neox", DEMO_ANSWER)[-1]
    logit = reference.logit(model, ids, len(ids) - 1, a, None)
    assert abs(s["logit"] - logit) < 1e-10
    assert abs(s["total_neurons"] - logit) < 1e-10
    # Each of seed 004's mistakes misses the logit by more than verify() allows.
    assert set(s["mistake_gaps"]) == {
        "by hand, right",
        "+eps where +N eps belongs",
        "center(v) adds the mean",
        "LN with Var - eps",
    }
    for name, gap in s["mistake_gaps"].items():
        assert (abs(gap) <= s["tolerance"]) == (name == "by hand, right"), name
    assert s["stdout"].count("IdentityError: does not add up") == 3

"""Independent reference numbers, from Hugging Face's own modules (no TransformerLens, no
symtrans code): logits, the residual before each block, and the input of the final norm."""

from __future__ import annotations

import torch


def final_norm(hf: torch.nn.Module) -> torch.nn.Module:
    for path in ("transformer.ln_f", "gpt_neox.final_layer_norm", "model.norm"):
        module: object = hf
        try:
            for part in path.split("."):
                module = getattr(module, part)
        except AttributeError:
            continue
        return module  # type: ignore[return-value]
    raise LookupError(type(hf).__name__)


def forward(hf: torch.nn.Module, tokens: list[int]) -> dict[str, torch.Tensor]:
    """``logits`` [pos, vocab], ``resid_pre`` [n_layers, pos, d_model] (the input of each
    block) and ``resid_final`` [pos, d_model] (the input of the final norm)."""
    captured: dict[str, torch.Tensor] = {}
    handle = final_norm(hf).register_forward_hook(
        lambda module, args, out: captured.__setitem__("resid_final", args[0][0].detach())
    )
    try:
        out = hf(torch.tensor([tokens]), output_hidden_states=True)
    finally:
        handle.remove()
    n_layers = hf.config.num_hidden_layers
    return {
        "logits": out.logits[0].detach(),
        "resid_pre": torch.stack([h[0] for h in out.hidden_states[:n_layers]]),
        "resid_final": captured["resid_final"],
    }


def logit(hf: torch.nn.Module, tokens: list[int], pos: int, a: int, b: int | None) -> float:
    logits = forward(hf, tokens)["logits"][pos].to(torch.float64)
    return float(logits[a] - (logits[b] if b is not None else 0.0))


def layer_contributions(
    hf: torch.nn.Module, tokens: list[int], pos: int, a: int, b: int | None
) -> tuple[list[float], float, float]:
    """Per-layer split written out from the definition of LayerNorm, with numbers taken
    from Hugging Face: ([embedding, block 0, ..., block L-1], constant, logit)."""
    out = forward(hf, tokens)
    norm = final_norm(hf)
    eps = float(getattr(norm, "eps", getattr(norm, "variance_epsilon", 0.0)))
    rms = "RMSNorm" in type(norm).__name__  # RMSNorm: no centring, no bias
    gamma = norm.weight.to(torch.float64)
    bias_param = getattr(norm, "bias", None)
    beta = torch.zeros_like(gamma) if bias_param is None else bias_param.to(torch.float64)
    W_U = hf.get_output_embeddings().weight.to(torch.float64)  # [vocab, d_model]
    u = W_U[a] - (W_U[b] if b is not None else 0.0)
    pre = out["resid_pre"][:, pos].to(torch.float64)
    final = out["resid_final"][pos].to(torch.float64)
    points = torch.cat([pre, final[None]])  # x^0, x^1, ..., x^L
    parts = [points[0]] + [points[i + 1] - points[i] for i in range(len(points) - 1)]
    n = final.shape[0]

    def centre(x: torch.Tensor) -> torch.Tensor:
        return x if rms else x - x.mean()

    centred = centre(final)
    sigma = torch.sqrt((centred @ centred) / n + eps)
    read = gamma * u
    contributions = [float((read @ centre(p)) / sigma) for p in parts]
    bias = hf.get_output_embeddings().bias
    b_U = 0.0 if bias is None else float(bias[a] - (bias[b] if b is not None else 0.0))
    constant = float(beta @ u) + b_U
    logits = out["logits"][pos].to(torch.float64)
    return contributions, constant, float(logits[a] - (logits[b] if b is not None else 0.0))


def _layer_norm(x: torch.Tensor, w: torch.Tensor | None, b: torch.Tensor | None, eps: float):
    c = x - x.mean(-1, keepdim=True)
    y = c / torch.sqrt((c * c).mean(-1, keepdim=True) + eps)
    return y * (1.0 if w is None else w) + (0.0 if b is None else b)


def attn_only_logits(weights: dict[str, object], tokens: list[int]) -> torch.Tensor:
    """An attention-only transformer (learned positions, LayerNorm) written out from its
    weights in float64, with no TransformerLens or symtrans code: logits ``[pos, vocab]``.

    ``weights``: ``W_E`` [vocab, d_model], ``W_pos`` [n_ctx, d_model], ``eps``, ``ln_final``
    (w, b), and ``layers``: per layer ``ln1`` (w, b; None where folded away), ``W_Q``/``W_K``/
    ``W_V`` [heads, d_model, d_head], ``b_Q``/``b_K``/``b_V`` [heads, d_head], ``W_O``
    [heads, d_head, d_model], ``b_O`` [d_model]; ``W_U`` [d_model, vocab], ``b_U`` [vocab].
    """

    def f64(t: object) -> torch.Tensor | None:
        return None if t is None else t.detach().to(torch.float64)  # type: ignore[attr-defined]

    eps = float(weights["eps"])  # type: ignore[arg-type]
    ids = torch.tensor(tokens)
    n = len(tokens)
    x = f64(weights["W_E"])[ids] + f64(weights["W_pos"])[:n]  # type: ignore[index]
    mask = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
    for layer in weights["layers"]:  # type: ignore[attr-defined]
        w, b = layer["ln1"]
        h = _layer_norm(x, f64(w), f64(b), eps)
        q = torch.einsum("pm,hmd->hpd", h, f64(layer["W_Q"])) + f64(layer["b_Q"])[:, None]
        k = torch.einsum("pm,hmd->hpd", h, f64(layer["W_K"])) + f64(layer["b_K"])[:, None]
        v = torch.einsum("pm,hmd->hpd", h, f64(layer["W_V"])) + f64(layer["b_V"])[:, None]
        scores = torch.einsum("hpd,hsd->hps", q, k) / q.shape[-1] ** 0.5
        pattern = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)
        z = torch.einsum("hps,hsd->hpd", pattern, v)
        x = x + torch.einsum("hpd,hdm->pm", z, f64(layer["W_O"])) + f64(layer["b_O"])
    w, b = weights["ln_final"]  # type: ignore[misc]
    x = _layer_norm(x, f64(w), f64(b), eps)
    return x @ f64(weights["W_U"]) + f64(weights["b_U"])

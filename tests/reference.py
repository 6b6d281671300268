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
    gamma = norm.weight.to(torch.float64)
    beta = norm.bias.to(torch.float64)
    W_U = hf.get_output_embeddings().weight.to(torch.float64)  # [vocab, d_model]
    u = W_U[a] - (W_U[b] if b is not None else 0.0)
    pre = out["resid_pre"][:, pos].to(torch.float64)
    final = out["resid_final"][pos].to(torch.float64)
    points = torch.cat([pre, final[None]])  # x^0, x^1, ..., x^L
    parts = [points[0]] + [points[i + 1] - points[i] for i in range(len(points) - 1)]
    n = final.shape[0]
    centred = final - final.mean()
    sigma = torch.sqrt((centred @ centred) / n + eps)
    read = gamma * u
    contributions = [float((read @ (p - p.mean())) / sigma) for p in parts]
    bias = hf.get_output_embeddings().bias
    b_U = 0.0 if bias is None else float(bias[a] - (bias[b] if b is not None else 0.0))
    constant = float(beta @ u) + b_U
    logits = out["logits"][pos].to(torch.float64)
    return contributions, constant, float(logits[a] - (logits[b] if b is not None else 0.0))

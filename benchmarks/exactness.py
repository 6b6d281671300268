"""How exactly do the parts add up to the logit? symtrans vs TransformerLens's own decomposition.

For each architecture × API × weight option × dtype, on the same randomly initialised models
(random γ, β and biases, ε = 1e-2; ``tests/arch_models.py``), prints a Markdown table of

- ``|symtrans − logit|``: the largest, over the five splits and over answer / answer − vs, of
  symtrans's sum minus the model's own logit (or logit difference);
- ``|TL − logit|``: TransformerLens's ``cache.decompose_resid(apply_ln=True, pos_slice=-1)``
  summed through ``cache.logit_attrs(...)`` minus the same logit (largest of the two
  directions). It leaves out the final norm's γ and β and the unembedding bias b_U.

Run ``.venv/bin/python benchmarks/exactness.py``. TransformerBridge rows come from the
running interpreter; HookedTransformer rows need TransformerLens 3.x: they run here if it
has HookedTransformer, else in ``.venv-tl3`` (``make test-tl3`` creates it) when present.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import symtrans as st  # noqa: E402
from tests import arch_models as am  # noqa: E402
from tests.conftest import PROMPT, _tokenizer  # noqa: E402

DTYPES = {
    "float64": torch.float64,
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}
DIRECTIONS = ((" Ireland", None), (" Ireland", " France"))
HEADER = (
    "| architecture | API | weights | dtype | \\|symtrans − logit\\| | \\|TL − logit\\| |\n"
    "|---|---|---|---|---|---|"
)
NAMES = {
    "gpt2": "GPT-2",
    "neox": "GPT-NeoX (Pythia)",
    "llama": "Llama (RMS, GQA)",
    "gptj": "GPT-J",
    am.ATTN_ONLY: "attention-only",
}


def symtrans_error(model: Any) -> float:
    worst = 0.0
    for split in st.SPLITS:
        for answer, vs in DIRECTIONS:
            d = st.decompose(model, PROMPT, answer=answer, vs=vs, split=split)
            worst = max(worst, abs(d.total - d.model_logit))
    return worst


def transformerlens_error(model: Any) -> str:
    """TransformerLens's own decomposition of the same logit, summed, minus the logit."""
    try:
        tokens = model.to_tokens(PROMPT)
        with torch.no_grad():
            logits, cache = model.run_with_cache(tokens)
            stack = cache.decompose_resid(apply_ln=True, pos_slice=-1)
            worst = 0.0
            for answer, vs in DIRECTIONS:
                a = model.to_single_token(answer)
                kwargs: dict[str, Any] = {"tokens": a, "pos_slice": -1}
                target = logits[0, -1, a].double()
                if vs is not None:
                    b = model.to_single_token(vs)
                    kwargs["incorrect_tokens"] = b
                    target = target - logits[0, -1, b].double()
                total = cache.logit_attrs(stack, **kwargs).double().sum()
                worst = max(worst, abs(float(total - target)))
        return f"{worst:.2g}"
    except Exception as exc:  # noqa: BLE001  (reported in the table, not hidden)
        return f"fails: {type(exc).__name__}"


def row(arch: str, api: str, weights: str, dtype: str, model: Any) -> str:
    return (
        f"| {NAMES[arch]} | {api} | {weights} | {dtype} | {symtrans_error(model):.2g} | "
        f"{transformerlens_error(model)} |"
    )


def build_dirs(root: Path) -> dict[str, Path]:
    dirs = {arch: am.build_hf(root / am.folder_name(arch), arch) for arch in am.HF_ARCHITECTURES}
    _tokenizer(root / am.ATTN_ONLY)
    dirs[am.ATTN_ONLY] = root / am.ATTN_ONLY
    return dirs


def bridge_rows(dirs: dict[str, Path]) -> list[str]:
    version = importlib.metadata.version("transformer_lens")
    out = []
    for arch in am.ARCHITECTURES:
        for compat in (False, True):
            for dtype in DTYPES:
                weights = "compatibility mode" if compat else "raw"
                try:
                    model = am.boot_bridge(dirs[arch], arch, DTYPES[dtype], compat)
                except Exception as exc:  # noqa: BLE001
                    out.append(
                        f"| {NAMES[arch]} | Bridge (TL {version}) | {weights} | {dtype} "
                        f"| TransformerLens fails: {type(exc).__name__} | |"
                    )
                    continue
                out.append(row(arch, f"Bridge (TL {version})", weights, dtype, model))
    return out


def hooked_rows(dirs: dict[str, Path]) -> list[str]:
    from transformers import AutoModelForCausalLM

    version = importlib.metadata.version("transformer_lens")
    out = []
    for arch in ("gpt2", "neox", "llama", am.ATTN_ONLY):
        for option in am.FOLD_OPTIONS:
            for dtype in DTYPES if option in ("raw", "all") else ("float64",):
                hf = (
                    None
                    if arch == am.ATTN_ONLY
                    else AutoModelForCausalLM.from_pretrained(dirs[arch], dtype=DTYPES[dtype])
                )
                model = am.load_hooked(dirs[arch], arch, DTYPES[dtype], option, hf_model=hf)
                weights = "none" if option == "raw" else ("all four" if option == "all" else option)
                out.append(row(arch, f"HookedTransformer (TL {version})", weights, dtype, model))
    return out


FAMILY_HEADER = (
    "| family | model | split | \\|symtrans − Hugging Face\\| | \\|symtrans − logit\\| "
    "| tolerance (issue 12) | refused, and why |\n|---|---|---|---|---|---|---|"
)


def family_rows(root: Path) -> list[str]:
    """Every family of symtrans.adapter.families through st.load_model (TransformerBridge,
    probed against Hugging Face at load), float64, every split, the worst of answer and
    answer − vs: against Hugging Face's own forward pass (loaded apart, the closer of eager and
    sdpa attention; before any soft-cap) and against the model's own logit."""
    from transformers import AutoModelForCausalLM

    from symtrans.adapter.families import FAMILIES
    from tests import families as fm

    titles = {f.name: f.title for f in FAMILIES}
    float32_norms = {f.name for f in FAMILIES if f.norms_in_float32}
    out = []
    for variant in (*fm.VARIANTS, fm.UNLISTED):
        folder = fm.build(root / variant.name, variant)
        title = titles.get(variant.family, "(not listed)")
        try:
            model = st.load_model(str(folder), dtype=torch.float64)
        except st.SymtransError as exc:
            out.append(f"| {title} | {variant.name} | | | | | {str(exc)[:160]}… |")
            continue
        extra = (
            {"experts_implementation": "eager"}
            if "moe" in variant.name or "mixtral" in variant.name
            else {}
        )
        refs = []
        for impl in ("eager", "sdpa"):
            try:
                refs.append(
                    AutoModelForCausalLM.from_pretrained(
                        folder, dtype=torch.float64, attn_implementation=impl, **extra
                    ).eval()
                )
            except ValueError:
                continue
        tolerance = "1e-6 relative" if variant.family in float32_norms else "1e-12"
        for split in st.SPLITS:
            try:
                worst_hf = worst_model = 0.0
                for answer, vs in DIRECTIONS:
                    d = st.decompose(model, fm.PROMPT, answer=answer, vs=vs, split=split)
                    a = model.tokenizer.encode(answer, add_special_tokens=False)[0]
                    b = (
                        None
                        if vs is None
                        else model.tokenizer.encode(vs, add_special_tokens=False)[0]
                    )
                    errors = []
                    for hf in refs:
                        logits = hf(torch.tensor([list(d.tokens)])).logits[0, -1].double()
                        cap = getattr(hf.config, "final_logit_softcapping", None)
                        if cap:
                            logits = cap * torch.atanh(logits / cap)
                        errors.append(
                            abs(d.total - float(logits[a] - (logits[b] if b is not None else 0)))
                        )
                    worst_hf = max(worst_hf, min(errors))
                    worst_model = max(worst_model, abs(d.total - d.model_logit))
                out.append(
                    f"| {title} | {variant.name} | {split} | {worst_hf:.2g} | {worst_model:.2g} "
                    f"| {tolerance} | |"
                )
            except st.SymtransError as exc:
                out.append(f"| {title} | {variant.name} | {split} | | | | {str(exc)[:120]}… |")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", choices=("bridge", "hooked", "both"), default="both")
    parser.add_argument("--families", action="store_true", help="the per-family table only")
    parser.add_argument("--no-header", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_grad_enabled(False)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    if args.families:
        with tempfile.TemporaryDirectory() as tmp:
            print("\n".join([FAMILY_HEADER, *family_rows(Path(tmp))]))
        return
    lines = [] if args.no_header else [HEADER]
    with tempfile.TemporaryDirectory() as tmp:
        dirs = build_dirs(Path(tmp))
        if args.api in ("bridge", "both"):
            lines += bridge_rows(dirs)
        if args.api in ("hooked", "both"):
            if am.hooked_available():
                lines += hooked_rows(dirs)
            elif args.api == "both" and (ROOT / ".venv-tl3/bin/python").exists():
                done = subprocess.run(
                    [
                        str(ROOT / ".venv-tl3/bin/python"),
                        __file__,
                        "--api",
                        "hooked",
                        "--no-header",
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                lines += [line for line in done.stdout.splitlines() if line.startswith("|")]
            else:
                lines.append(
                    "| HookedTransformer rows need TransformerLens 3.x: "
                    "run `make test-tl3` once to create .venv-tl3 | | | | | |"
                )
    print("\n".join(lines))


if __name__ == "__main__":
    main()

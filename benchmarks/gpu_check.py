#!/usr/bin/env python
"""One check for a machine with a GPU (issue 15): a GPT-2-medium-sized random model in
float32 and bfloat16 on cuda against the same weights in float64 on the CPU, through the
TransformerBridge and nnsight, whole and sharded; and one benchmark row.

    python benchmarks/gpu_check.py                 # on a GPU machine (about 3 minutes)
    python benchmarks/gpu_check.py --device cpu --quick   # the same code on a small model

What it prints (and writes as JSON to ``--json``, default ``$OUT/gpu_check.json`` when
``$OUT`` is set):

1. For each (library, dtype, placement): the largest |term on the device - term in CPU
   float64| over every term of the ``heads`` and ``neurons`` splits of 8 prompts, the same
   relative to Σ|terms|, the largest |sum - the device model's logit|, and whether
   ``verify()`` passed with the tolerance of that dtype. The float64 reference is checked
   against Hugging Face's own forward on the CPU first.
   Placements: ``cuda`` (the whole model on one GPU) and ``sharded`` (``device_map``: the
   blocks split over every GPU there is; with one GPU, half the blocks on it and the rest in
   CPU memory, offloaded).
2. A benchmark row: prompts/s of ``st.decompose_dataset(..., split="neurons",
   keep_values=False)`` on cuda float32 against Hugging Face's batched forward on cuda over
   the same prompts (best of 3, ``torch.cuda.synchronize`` around each).

Exit status 0 when every row verified, 1 otherwise. Nothing is downloaded: the model (about
1.4 GB in float32) is built from a seed under ``benchmarks/.cache/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import speed  # noqa: E402

MEDIUM = speed.Shape(
    n_layers=24, d_model=1024, n_heads=16, d_mlp=4096, vocab=50257, n_ctx=1024, batch=8, seq=64
)
QUICK = speed.Shape(
    n_layers=4, d_model=256, n_heads=4, d_mlp=1024, vocab=8192, n_ctx=512, batch=8, seq=32
)
SPLITS = ("heads", "neurons")


def _device_map(n_layers: int, device: str) -> dict[str, Any]:
    """Blocks over every GPU; with one GPU (or on the CPU), the second half offloaded."""
    import torch

    gpus = torch.cuda.device_count() if device.startswith("cuda") else 0
    if gpus >= 2:
        where = [i * gpus // n_layers for i in range(n_layers)]
        first, last = 0, gpus - 1
    else:
        first = last = 0 if gpus else "cpu"
        where = [first if i < n_layers // 2 else "cpu" for i in range(n_layers)]
    placement: dict[str, Any] = {
        "transformer.wte": first,
        "transformer.wpe": first,
        "transformer.drop": first,
        "transformer.ln_f": last,
        "lm_head": first,
    }
    placement.update({f"transformer.h.{i}": w for i, w in enumerate(where)})
    return placement


def _load(library: str, model_dir: Path, dtype: Any, device: str, sharded: bool) -> Any:
    import symtrans as st

    if not sharded:
        return st.load_model(str(model_dir), dtype=dtype, device=device, library=library)
    n_layers = json.loads((model_dir / "config.json").read_text())["n_layer"]
    return st.load_model(
        str(model_dir),
        dtype=dtype,
        library=library,
        device_map=_device_map(n_layers, device),
        offload_folder=str(speed.CACHE / "offload"),
    )


def _reference(library: str, model_dir: Path, data: dict[str, Any]) -> dict[str, Any]:
    """CPU float64 through ``library``: its terms, checked against Hugging Face's own forward
    on the tokens it fed the model (the bridge prepends BOS to GPT-2 prompts, nnsight does
    not)."""
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM

    import symtrans as st

    model = st.load_model(str(model_dir), dtype=torch.float64, library=library)
    out: dict[str, Any] = {}
    for split in SPLITS:
        out[split] = st.decompose(model, data["prompts"], data["answers"], split=split).verify()
    del model
    hf = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float64).eval()
    b = out["neurons"]
    with torch.no_grad():
        logits = hf(torch.tensor([list(d.tokens) for d in b]), use_cache=False).logits[:, -1]
    hf_logits = logits[torch.arange(len(b)), torch.tensor(data["answer_ids"])].numpy()
    out["hf_error"] = float(np.abs(b.totals - hf_logits).max())
    assert out["hf_error"] < 1e-9, f"float64 {library} is {out['hf_error']:.2e} from Hugging Face"
    return out


def _compare(model: Any, data: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    import symtrans as st

    row: dict[str, Any] = {"verified": True}
    for split in SPLITS:
        b = st.decompose(model, data["prompts"], data["answers"], split=split)
        r = ref[split]
        diff = np.abs(b.values - r.values)
        magnitude = np.abs(r.values).sum(axis=1, keepdims=True)
        row[f"{split}_max_abs"] = float(diff.max())
        row[f"{split}_max_rel"] = float((diff / magnitude).max())
        row[f"{split}_identity"] = float(np.abs(b.totals - b.model_logits).max())
        try:
            b.verify()
        except st.IdentityError as exc:
            row["verified"] = False
            row["why"] = str(exc)[:300]
    return row


def _throughput(model_dir: Path, data: dict[str, Any], device: str, n: int) -> dict[str, Any]:
    import itertools

    import torch
    from transformers import AutoModelForCausalLM

    import symtrans as st

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    prompts, answers = data["prompts"], data["answers"]
    batch = len(prompts)
    hf = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(device).eval()
    ids = torch.tensor(data["tokens"], device=device)

    def forward() -> None:
        with torch.no_grad():
            for _ in range(n // batch):
                hf(ids, use_cache=False)
        sync()

    bridge = st.load_model(str(model_dir), dtype="float32", device=device)

    def dataset() -> None:
        ds = st.decompose_dataset(
            bridge,
            itertools.islice(itertools.cycle(prompts), n),
            itertools.islice(itertools.cycle(answers), n),
            split="neurons",
            batch_size=batch,
            progress=False,
            keep_values=False,
        )
        assert ds.count == n
        sync()

    best = {"hf_forward": float("inf"), "decompose_dataset": float("inf")}
    forward(), dataset()  # warm-up
    for _ in range(3):
        for name, job in (("hf_forward", forward), ("decompose_dataset", dataset)):
            start = time.perf_counter()
            job()
            best[name] = min(best[name], time.perf_counter() - start)
    return {
        "prompts": n,
        "hf_forward_prompts_per_s": n / best["hf_forward"],
        "decompose_dataset_prompts_per_s": n / best["decompose_dataset"],
        "ratio": best["hf_forward"] / best["decompose_dataset"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="a small model (a smoke test)")
    parser.add_argument("--prompts", type=int, default=256, help="for the benchmark row")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    import torch

    torch.manual_seed(0)
    shape = QUICK if args.quick else MEDIUM
    started = time.perf_counter()
    model_dir = speed.build_model(shape)
    data = speed.build_prompts(shape, model_dir)
    name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu"
    print(
        f"# {shape.describe()}; {name}; torch {torch.__version__}; "
        f"{torch.cuda.device_count() if args.device.startswith('cuda') else 0} GPUs"
    )
    rows: list[dict[str, Any]] = []
    libraries = ["transformer_lens"]
    try:
        import nnsight  # noqa: F401

        libraries.append("nnsight")
    except ImportError:
        print("nnsight is not installed: its rows are skipped (pip install 'symtrans[nnsight]')")
    errors = {}
    for library in libraries:
        ref = _reference(library, model_dir, data)
        errors[library] = ref["hf_error"]
        print(f"CPU float64 {library}: largest |sum - Hugging Face logit| {ref['hf_error']:.2e}")
        for dtype in (torch.float32, torch.bfloat16):
            for sharded in (False, True):
                placement = "sharded" if sharded else args.device
                row: dict[str, Any] = {
                    "library": library,
                    "dtype": str(dtype).removeprefix("torch."),
                    "placement": placement,
                }
                try:
                    model = _load(library, model_dir, dtype, args.device, sharded)
                    row.update(_compare(model, data, ref))
                    del model
                except Exception as exc:  # a row that fails is reported, the others still run
                    row.update(verified=False, why=f"{type(exc).__name__}: {exc}"[:300])
                    traceback.print_exc()
                if args.device.startswith("cuda"):
                    torch.cuda.empty_cache()
                rows.append(row)

    print(
        "| library | dtype | placement | heads max abs | heads max rel | neurons max abs "
        "| neurons max rel | max abs identity | verified |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        if "heads_max_abs" not in r:
            print(
                f"| {r['library']} | {r['dtype']} | {r['placement']} | | | | | | "
                f"FAILED: {r.get('why', '')} |"
            )
            continue
        identity = max(r["heads_identity"], r["neurons_identity"])
        verdict = "yes" if r["verified"] else f"NO: {r.get('why', '')}"
        print(
            f"| {r['library']} | {r['dtype']} | {r['placement']} | {r['heads_max_abs']:.2e} "
            f"| {r['heads_max_rel']:.2e} | {r['neurons_max_abs']:.2e} "
            f"| {r['neurons_max_rel']:.2e} | {identity:.2e} | {verdict} |"
        )

    bench = _throughput(model_dir, data, args.device, args.prompts)
    print(
        f"\n| job ({name}, float32, neurons split, batch {shape.batch} x {shape.seq}) "
        "| prompts/s | × hf_forward |"
    )
    print("|---|---:|---:|")
    print(f"| hf_forward | {bench['hf_forward_prompts_per_s']:.1f} | 1.00 |")
    print(
        f"| decompose_dataset | {bench['decompose_dataset_prompts_per_s']:.1f} "
        f"| {bench['ratio']:.2f} |"
    )
    print(f"# {time.perf_counter() - started:.0f} s in all")

    target = args.json or (
        os.path.join(os.environ["OUT"], "gpu_check.json") if os.environ.get("OUT") else None
    )
    if target:
        Path(target).write_text(
            json.dumps(
                {
                    "shape": dataclasses.asdict(shape),
                    "device": name,
                    "rows": rows,
                    "benchmark": bench,
                    "reference_hf_error": errors,
                },
                indent=1,
            )
        )
        print(f"wrote {target}")
    return 0 if all(r["verified"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

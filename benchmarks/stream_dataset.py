"""Streaming a dataset (issue 7, item 4): ``st.decompose_dataset(..., keep_values=False)`` over
a generator of prompts, with the process's peak extra memory read as the dataset grows.

The model and prompts are scaling.py's base (4 layers, d_model 768, d_mlp 3072, vocab 8192;
prompts of 64 tokens). The generator cycles through the cached batch of prompts for as many
prompts as asked; each time it has handed out 2^k batches it records the kernel's high-water
mark (reset once before the run) minus the RSS before the run. A flat column means memory does
not grow with the dataset: only running sums (mean, M2) and two floats per prompt are kept.
With ``--keep`` the same run keeps every value ([prompts, terms]), for comparison.

    python benchmarks/stream_dataset.py [--batches 64] [--split neurons] [--keep]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scaling  # noqa: E402
import speed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=64)
    parser.add_argument("--split", default="neurons")
    parser.add_argument("--keep", action="store_true", help="keep_values=True, for comparison")
    args = parser.parse_args()

    import torch

    import symtrans as st

    torch.set_num_threads(2)
    shape = scaling.BASE
    model_dir = speed.build_model(shape)
    data = speed.build_prompts(shape, model_dir)
    bridge = speed._bridge(model_dir)
    prompts, answers = data["prompts"], data["answers"]
    batch = len(prompts)
    peaks: list[tuple[int, float]] = []
    st.decompose(bridge, prompts[:1], answer=answers[:1], split=args.split)  # warm-up
    before = speed.rss_mb()
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")

    n = args.batches * batch

    def prompt_stream() -> Iterator[str]:
        for i in range(n):
            done = i // batch
            if i % batch == 0 and done and done & (done - 1) == 0:
                peaks.append((done, speed._status_kb("VmHWM") / 1024 - before))
            yield prompts[i % batch]

    ds = st.decompose_dataset(
        bridge,
        prompt_stream(),
        (answers[i % batch] for i in range(n)),
        split=args.split,
        batch_size=batch,
        progress=False,
        keep_values=args.keep,
    )
    peaks.append((args.batches, speed._status_kb("VmHWM") / 1024 - before))
    print(
        f"# {ds.count} prompts ({args.batches} batches of {batch} x {shape.seq} tokens), "
        f"split {args.split!r} ({len(ds.labels):,} terms), keep_values={args.keep}; "
        f"largest |sum - logit| {ds.max_error:.2e}"
    )
    print("| batches done | prompts | peak extra MB so far |")
    print("|---:|---:|---:|")
    for done, peak in peaks:
        print(f"| {done} | {done * batch} | {peak:.0f} |")


if __name__ == "__main__":
    main()

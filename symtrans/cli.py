"""The ``symtrans`` command: ``demo``, ``report``, ``verify``, ``dataset``, ``patch``, ``models``.

Every :class:`~symtrans.errors.SymtransError` becomes one line on stderr and an exit code:
1 when the identity does not hold, 2 for bad input. ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InvalidArgumentError, SymtransError
from .kinds import SITES, SPLITS

if TYPE_CHECKING:
    from .results.decomposition import Decomposition
    from .results.patching import Patching


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse's own usage errors are bad input too: one line, exit 2.
        self.exit(2, f"symtrans: error: {message} (see `symtrans {self.prog.split()[-1]} -h`)\n")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="tiny-capitals", help="embedded name or local HF directory")
    p.add_argument("--prompt", required=True, help="the text the model reads")
    p.add_argument("--answer", required=True, help="the token whose logit is decomposed")
    p.add_argument("--vs", default=None, help="a second token: decompose answer − vs")
    p.add_argument("--split", default="layers", choices=SPLITS)
    p.add_argument("--position", type=int, default=-1, help="destination position (default -1)")
    p.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    p.add_argument("--device", default="cpu", help="where the forward pass runs (cpu, cuda, ...)")
    p.add_argument(
        "--allow-pickle",
        action="store_true",
        help="load a folder whose weights are pickle files (only if you trust it)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="symtrans",
        description="A transformer's logit as an exact, verified sum of its parts.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    demo = sub.add_parser("demo", help="decompose the demo prompt on the embedded default model")
    demo.add_argument("-o", "--output", default="symtrans-demo", help="output folder")
    demo.add_argument(
        "--format",
        default="md,tex,pdf,html",
        help="comma-separated formats (default: md,tex,pdf,html)",
    )

    report = sub.add_parser("report", help="write a report of one decomposition")
    _common(report)
    report.add_argument("--format", default="md", help="comma-separated: md,tex,pdf,html")
    report.add_argument("-o", "--output", default=".", help="output folder")
    report.add_argument("--top-k", type=int, default=12, help="rows in the terms table")
    report.add_argument("--templates", default=None, help="a folder of your own templates")

    verify = sub.add_parser("verify", help="check that the terms add up (exit 0 / 1 / 2)")
    _common(verify)
    verify.add_argument("--atol", type=float, default=None, help="absolute tolerance")

    data = sub.add_parser(
        "dataset",
        help="decompose every prompt of a .jsonl/.csv file into Parquet or CSV tables "
        "(streams; resumes after an interrupt)",
    )
    data.add_argument(
        "--model", default="tiny-capitals", help="embedded name or local HF directory"
    )
    data.add_argument(
        "--file", required=True, help="prompts: .jsonl or .csv with prompt, answer, vs"
    )
    data.add_argument("--answer", default=None, help="the answer where the file has none")
    data.add_argument("--vs", default=None, help="the vs token where the file has none")
    data.add_argument("--split", default="layers", choices=SPLITS)
    data.add_argument("--position", type=int, default=-1, help="destination position (default -1)")
    data.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    data.add_argument(
        "--device", default="cpu", help="where the forward pass runs (cpu, cuda, ...)"
    )
    data.add_argument(
        "--library",
        default="transformer_lens",
        choices=("transformer_lens", "nnsight"),
        help="load the model as a TransformerBridge or an nnsight LanguageModel",
    )
    data.add_argument("--batch-size", type=int, default=16, help="prompts per forward pass")
    data.add_argument("--format", default="parquet", choices=("parquet", "csv"))
    data.add_argument("-o", "--output", default="symtrans-dataset", help="output folder")
    data.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    data.add_argument(
        "--allow-pickle",
        action="store_true",
        help="load a folder whose weights are pickle files (only if you trust it)",
    )
    patch = sub.add_parser(
        "patch", help="activation patching of clean against corrupted prompts (seed 003)"
    )
    patch.add_argument(
        "--model", default="tiny-capitals", help="embedded name or local HF directory"
    )
    patch.add_argument("--clean", action="append", help="a clean prompt (repeat for more pairs)")
    patch.add_argument(
        "--corrupted", action="append", help="its corrupted prompt, same number of tokens"
    )
    patch.add_argument("--answer", action="append", help="the answer token (one, or one per pair)")
    patch.add_argument("--vs", action="append", help="a second token: the metric is answer − vs")
    patch.add_argument(
        "--pairs",
        help='a JSONL file, one pair a line: {"clean": ..., "corrupted": ..., "answer": ..., '
        '"vs": ...} (vs optional), instead of --clean/--corrupted/--answer/--vs',
    )
    patch.add_argument("--site", default="resid_pre", choices=SITES)
    patch.add_argument(
        "--positions", default=None, help="comma-separated positions to patch (default: all)"
    )
    patch.add_argument("--explain", type=int, default=3, help="largest cells written as sums")
    patch.add_argument(
        "--split", default="heads", choices=SPLITS, help="terms of the explained cells"
    )
    patch.add_argument(
        "--batch-size", type=int, default=64, help="rows (cell x pair) per forward pass"
    )
    patch.add_argument("--format", default="md", help="comma-separated: md,tex,pdf,html")
    patch.add_argument("-o", "--output", default=".", help="output folder")
    patch.add_argument("--top-k", type=int, default=12, help="rows in the tables")
    patch.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    patch.add_argument("--device", default="cpu", help="where the forward pass runs")
    patch.add_argument(
        "--allow-pickle",
        action="store_true",
        help="load a folder whose weights are pickle files (only if you trust it)",
    )

    sub.add_parser("models", help="list the embedded models")

    sty = sub.add_parser("sty", help="write symtrans.sty (for \\input of report fragments)")
    sty.add_argument("-o", "--output", default=".", help="output folder")
    return parser


def _decompose(args: argparse.Namespace) -> Decomposition:
    from .adapter.loading import load_model
    from .analyses.decompose import decompose

    model = load_model(
        args.model, dtype=args.dtype, device=args.device, allow_pickle=args.allow_pickle
    )
    return decompose(
        model,
        args.prompt,
        answer=args.answer,
        vs=args.vs,
        split=args.split,
        position=args.position,
    )


def _read_pairs(path: str) -> tuple[list[str], list[str], list[str], list[str | None]]:
    """clean, corrupted, answer and vs from a JSONL file of pairs (one JSON object a line)."""
    import json

    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InvalidArgumentError(
            f"cannot read --pairs {path!r}: {exc.strerror or exc}; give a JSONL file"
        ) from None
    rows: list[tuple[str, str, str, str | None]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidArgumentError(
                f"--pairs {path!r} line {number} is not JSON ({exc.msg}); write one object a "
                'line: {"clean": ..., "corrupted": ..., "answer": ..., "vs": ...}'
            ) from None
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), str) for k in ("clean", "corrupted", "answer")
        ):
            raise InvalidArgumentError(
                f"--pairs {path!r} line {number} is {line.strip()[:80]!r}; each line needs the "
                'strings "clean", "corrupted" and "answer" (and optionally "vs")'
            )
        vs = item.get("vs")
        if vs is not None and not isinstance(vs, str):
            raise InvalidArgumentError(f"--pairs {path!r} line {number}: vs must be a string")
        rows.append((item["clean"], item["corrupted"], item["answer"], vs))
    if not rows:
        raise InvalidArgumentError(f"--pairs {path!r} holds no pairs; give one JSON object a line")
    return (
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
    )


def _one_or_each(values: list[str] | None) -> str | list[str] | None:
    if values is None:
        return None
    return values[0] if len(values) == 1 else values


def _patch(args: argparse.Namespace) -> Patching:
    from .adapter.loading import load_model
    from .analyses.patching import patch

    if args.pairs is not None:
        if args.clean or args.corrupted or args.answer or args.vs:
            raise InvalidArgumentError(
                "give the pairs either with --pairs FILE or with --clean/--corrupted/--answer/"
                "--vs, not both"
            )
        clean, corrupted, answers, versus = _read_pairs(args.pairs)
        answer: str | list[str] = answers
        vs: str | list[str] | list[str | None] | None = versus
    else:
        missing = [f"--{k}" for k in ("clean", "corrupted", "answer") if not getattr(args, k)]
        if missing:
            raise InvalidArgumentError(
                f"symtrans patch needs {', '.join(missing)} (or --pairs FILE.jsonl)"
            )
        clean, corrupted = args.clean, args.corrupted
        answer = _one_or_each(args.answer)  # type: ignore[assignment]
        vs = _one_or_each(args.vs)
    positions = None
    if args.positions is not None:
        try:
            positions = [int(p) for p in args.positions.split(",") if p.strip()]
        except ValueError:
            raise InvalidArgumentError(
                f"--positions {args.positions!r} is not a comma-separated list of integers, "
                "e.g. 1,2,-1"
            ) from None
    model = load_model(
        args.model, dtype=args.dtype, device=args.device, allow_pickle=args.allow_pickle
    )
    return patch(
        model,
        clean,
        corrupted,
        answer,
        vs,
        site=args.site,
        positions=positions,
        explain=args.explain,
        split=args.split,
        batch_size=args.batch_size,
    )


def _formats(text: str) -> list[str]:
    from .report import FORMATS

    formats = [f.strip().lower().lstrip(".") for f in text.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise SymtransError(
            f"unknown --format {text!r}; give a comma-separated list of {', '.join(FORMATS)}"
        )
    return formats


def _verification_line(d: Decomposition, atol: float | None = None) -> str:
    check = d.check(atol)
    verdict = "ok" if check.passed else "MISMATCH"
    return (
        f"{verdict}: sum of {len(d.labels)} terms {check.total:.12g}, model logit "
        f"{check.model_logit:.12g}, difference {check.difference:.3g}, "
        f"tolerance {check.tolerance:.3g}"
    )


def _quiet_libraries() -> None:
    """The CLI's stderr is for its own one-line errors: no progress bars or library warnings.
    Environment variables, read when the libraries load, so that commands that load no model
    (``--help``, ``models``, ``sty``) import none of them."""
    import logging
    import os
    import warnings

    warnings.filterwarnings("ignore")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    logging.getLogger("transformer_lens").setLevel(logging.ERROR)
    if "transformers" in sys.modules:  # already loaded (by the caller): set it directly
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()


def _dataset(args: argparse.Namespace) -> int:
    from .adapter.loading import load_model
    from .analyses.dataset_files import write_dataset
    from .results.frames import require_pandas

    require_pandas()  # before the model loads: a missing extra is bad input
    model = load_model(
        args.model,
        dtype=args.dtype,
        device=args.device,
        allow_pickle=args.allow_pickle,
        library=args.library,
    )
    try:
        done = write_dataset(
            model,
            args.file,
            args.output,
            split=args.split,
            position=args.position,
            answer=args.answer,
            vs=args.vs,
            fmt=args.format,
            batch_size=args.batch_size,
            progress=not args.no_progress,
            model_name=args.model,
        )
    except KeyboardInterrupt:
        print(
            f"symtrans: interrupted; the prompts done so far are in {args.output}: run the "
            "same command again to continue",
            file=sys.stderr,
        )
        return 130
    resumed = f" (continued after {done.resumed_from})" if done.resumed_from else ""
    tables = "prompts.csv, terms.csv" if args.format == "csv" else "prompts/, terms/ (Parquet)"
    print(
        f"wrote {done.rows} prompts{resumed} to {done.folder}: {tables}; "
        f"largest |sum - model logit| {done.max_error:.3g}"
    )
    return 0


def run(args: argparse.Namespace) -> int:
    if args.command == "models":
        from .models import DEFAULT_MODEL, EMBEDDED_MODELS

        for m in EMBEDDED_MODELS.values():
            mark = " (default)" if m.name == DEFAULT_MODEL else ""
            print(f"{m.name}{mark}: {m.architecture}; {m.description}")
        return 0
    if args.command == "demo":
        from .adapter.loading import load_model
        from .analyses.decompose import decompose
        from .models import DEFAULT_MODEL
        from .models.facts import DEMO_ANSWER, DEMO_PROMPT

        formats = _formats(args.format)
        model = load_model(DEFAULT_MODEL)
        d = decompose(model, DEMO_PROMPT, answer=DEMO_ANSWER, split="heads")
        print(f"{DEFAULT_MODEL}: {DEMO_PROMPT!r} -> {DEMO_ANSWER!r}, split 'heads'")
        print(_verification_line(d))
        from .errors import LatexNotFoundError

        for fmt in formats:
            try:
                print(f"wrote {d.save(Path(args.output) / f'report.{fmt}')}")
            except LatexNotFoundError as exc:  # the demo still shows the other formats
                print(f"skipped report.{fmt}: {exc}")
        d.verify()
        return 0
    if args.command == "sty":
        from .report import write_sty

        print(f"wrote {write_sty(args.output)}")
        return 0
    if args.command == "report":
        formats = _formats(args.format)
        d = _decompose(args)
        for fmt in formats:
            target = Path(args.output) / f"report.{fmt}"
            print(f"wrote {d.save(target, top_k=args.top_k, templates=args.templates)}")
        print(_verification_line(d))
        return 0
    if args.command == "dataset":
        return _dataset(args)
    if args.command == "patch":
        formats = _formats(args.format)
        p = _patch(args)
        column = "head" if p.site == "z" else "position"
        print(
            f"{p.site} over {p.count} pairs: clean {p.clean_metric:.6g}, corrupted "
            f"{p.corrupted_metric:.6g}; largest cells (layer, {column}):"
        )
        for layer, index, value, effect in p.top(5):
            print(f"  {layer:>3} {index:>4}  normalised {value:+.4f}  effect {effect:+.6g}")
        for fmt in formats:
            target = Path(args.output) / f"patching.{fmt}"
            print(f"wrote {p.save(target, top_k=args.top_k)}")
        from .verify import worst

        claim, check = worst(p)
        verdict = "ok" if check.passed else "MISMATCH"
        print(
            f"{verdict}: {len(p.claims())} checks, worst: {claim.subject}: {claim.what} "
            f"{check.total:.12g} against {check.model_logit:.12g} (difference "
            f"{check.difference:.3g}, tolerance {check.tolerance:.3g})"
        )
        p.verify()
        return 0
    if args.command == "verify":
        d = _decompose(args)
        print(_verification_line(d, args.atol))
        d.verify(args.atol)
        return 0
    raise AssertionError(args.command)  # argparse only lets known commands through


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _quiet_libraries()
    try:
        return run(args)
    except SymtransError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"symtrans: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("symtrans: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

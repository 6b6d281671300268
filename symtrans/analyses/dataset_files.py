"""A study over a dataset file, written to disk as it goes (``symtrans dataset``).

The prompts come from a JSON Lines or CSV file with a ``prompt`` column and ``answer`` (and
optionally ``vs``) columns. They are read twice, one row at a time: a first pass checks every
row (columns, single-token answers, lengths) and hashes the file, so that bad input is
refused before anything is written; the second decomposes ``batch_size`` rows at a time,
checks each identity, and appends the batch to the output:

    out/run.json          the settings (model, file and its hash, split, position, format)
    out/prompts.csv or out/prompts/part-*.parquet   one row per prompt: index, prompt,
                          answer, vs, position, total, model_logit, constant, scale
    out/terms.csv or out/terms/part-*.parquet       one row per prompt and term (and the
                          constant, ``bias``): index, term, kind, layer, head, neuron,
                          source, value
    out/progress.jsonl    one line per batch written, after its data is on disk

Memory stays flat in the number of prompts: a batch is written and dropped before the next is
read. Append-only and resumable: Parquet batches are part files (read a folder with
``pandas.read_parquet("out/terms")``), CSV batches are appended to one file; a batch
counts as done only once ``progress.jsonl`` records it, so a restart after an interrupt drops
whatever the interrupted batch had begun to write and continues with the next prompt.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..adapter import resolve
from ..errors import InvalidArgumentError, SymtransError
from ..kinds import Split, check_split
from ..results.frames import batch_frame, require_pandas
from ..trace.inputs import direction_ids, resolve_position
from ..verify import verify as verify_result
from .decompose import decompose

FORMATS = ("parquet", "csv")
SUFFIXES = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}


@dataclass(frozen=True)
class Row:
    line: int  # 1-based line of the file (for messages)
    prompt: str
    answer: str
    vs: str | None


@dataclass(frozen=True)
class Settings:
    """What a run is: a restart continues only a run of the same settings."""

    model: str
    file: str
    sha256: str
    rows: int
    split: str
    position: int
    format: str


def read_rows(path: Path, answer: str | None = None, vs: str | None = None) -> Iterator[Row]:
    """The rows of a ``.jsonl`` or ``.csv`` file, one at a time. ``answer``/``vs`` are used
    where the file has no such column (or leaves it empty)."""
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise InvalidArgumentError(
            f"{str(path)!r}: expected a .jsonl or .csv file of prompts, got {path.suffix!r}"
        )
    if not path.is_file():
        raise InvalidArgumentError(f"{str(path)!r} is not a file; give a .jsonl or .csv file")
    with path.open(newline="", encoding="utf-8") as fh:
        records: Iterator[tuple[int, Any]]
        if kind == "csv":
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or "prompt" not in reader.fieldnames:
                raise InvalidArgumentError(
                    f"{str(path)!r}: the CSV header must name a 'prompt' column (and 'answer', "
                    f"'vs'), got {reader.fieldnames}"
                )
            records = ((reader.line_num, r) for r in reader)
        else:
            records = _json_lines(fh, path)
        for line, record in records:
            yield _row(record, line, path, answer, vs)


def _json_lines(fh: Any, path: Path) -> Iterator[tuple[int, Any]]:
    for line, text in enumerate(fh, start=1):
        if not text.strip():
            continue
        try:
            yield line, json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidArgumentError(
                f"{str(path)!r} line {line} is not JSON ({exc.msg}): {text.strip()[:80]!r}; "
                'each line must be an object like {"prompt": "...", "answer": " ..."}'
            ) from None


def _row(record: Any, line: int, path: Path, answer: str | None, vs: str | None) -> Row:
    where = f"{str(path)!r} line {line}"
    if not isinstance(record, dict):
        raise InvalidArgumentError(f"{where}: expected an object with a 'prompt', got {record!r}")
    prompt = record.get("prompt")
    a = record.get("answer") or answer
    v = record.get("vs") or vs
    if not isinstance(prompt, str) or not prompt:
        raise InvalidArgumentError(f"{where}: 'prompt' must be a non-empty string, got {prompt!r}")
    if not isinstance(a, str) or not a:
        raise InvalidArgumentError(
            f"{where}: no answer; give an 'answer' column or --answer for every row"
        )
    if v is not None and not isinstance(v, str):
        raise InvalidArgumentError(f"{where}: 'vs' must be a string, got {v!r}")
    return Row(line, prompt, a, v)


def check_rows(
    adapter: Any, path: Path, answer: str | None, vs: str | None, position: int
) -> tuple[int, str]:
    """Every row checked (tokens, position) before anything is written: the number of rows
    and the file's sha256."""
    n = 0
    for row in read_rows(path, answer, vs):
        try:
            tokens = adapter.tokenize(row.prompt)
            resolve_position(position, len(tokens), row.prompt)
            direction_ids(adapter, row.answer, row.vs)
        except SymtransError as exc:
            raise type(exc)(f"{str(path)!r} line {row.line}: {exc}") from None
        n += 1
    if n == 0:
        raise InvalidArgumentError(f"{str(path)!r} holds no prompts")
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return n, digest.hexdigest()


class _Output:
    """The output folder: settings, the two tables, the progress log."""

    def __init__(self, folder: Path, settings: Settings) -> None:
        self.folder = folder
        self.settings = settings
        self.fmt = settings.format
        self.progress = folder / "progress.jsonl"

    def table(self, name: str) -> Path:
        return self.folder / f"{name}.{self.fmt}"

    def done(self) -> tuple[int, int, dict[str, int]]:
        """Prompts done, batches done and, for CSV, each table's size when the last batch
        was recorded. A run of other settings in the folder is refused."""
        run = self.folder / "run.json"
        if not run.exists():
            return 0, 0, {}
        previous = json.loads(run.read_text())
        if previous != asdict(self.settings):
            changed = sorted(k for k, v in asdict(self.settings).items() if previous.get(k) != v)
            raise InvalidArgumentError(
                f"{str(self.folder)!r} holds a run with other settings ({', '.join(changed)} "
                "differ); continue it with the same command, or give another -o folder"
            )
        last: dict[str, Any] = {"done": 0, "batch": 0, "bytes": {}}
        if self.progress.exists():
            for text in self.progress.read_text().splitlines():
                try:
                    last = json.loads(text)
                except json.JSONDecodeError:  # a line cut by the interrupt: not recorded
                    break
        return int(last["done"]), int(last["batch"]), dict(last["bytes"])

    def start(self, batches: int, sizes: dict[str, int]) -> None:
        """Create the folder, or drop what an interrupted batch began to write."""
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "run.json").write_text(json.dumps(asdict(self.settings), indent=1))
        for name in ("prompts", "terms"):
            if self.fmt == "csv":
                target = self.table(name)
                if target.exists():
                    with target.open("r+b") as fh:
                        fh.truncate(sizes.get(name, 0))
            else:
                parts = self.folder / name
                parts.mkdir(exist_ok=True)
                keep = {f"part-{i:05d}.parquet" for i in range(batches)}
                for part in parts.iterdir():
                    if part.name not in keep:
                        part.unlink()
        if self.progress.exists():  # keep only whole lines
            lines = self.progress.read_text().splitlines(keepends=True)
            whole = [t for t in lines if t.endswith("\n")]
            self.progress.write_text("".join(whole))

    def append(self, batch: int, frames: dict[str, Any], done: int) -> None:
        sizes: dict[str, int] = {}
        for name, frame in frames.items():
            if self.fmt == "csv":
                target = self.table(name)
                header = not target.exists() or target.stat().st_size == 0
                with target.open("a", newline="", encoding="utf-8") as fh:
                    frame.to_csv(fh, header=header, index=False)
                    fh.flush()
                    os.fsync(fh.fileno())
                sizes[name] = target.stat().st_size
            else:  # written aside, then renamed: a part file is whole or absent
                target = self.folder / name / f"part-{batch:05d}.parquet"
                partial = target.with_suffix(".parquet.partial")
                frame.to_parquet(partial, index=False)
                os.replace(partial, target)
        with self.progress.open("a") as fh:
            fh.write(json.dumps({"batch": batch + 1, "done": done, "bytes": sizes}) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


@dataclass(frozen=True)
class DatasetRun:
    """What :func:`write_dataset` did."""

    folder: Path
    rows: int
    resumed_from: int  # prompts already done when it started
    max_error: float  # the largest |sum − model logit| of the prompts it decomposed


def write_dataset(
    model: Any,
    file: str | os.PathLike[str],
    output: str | os.PathLike[str],
    split: Split = "layers",
    position: int = -1,
    answer: str | None = None,
    vs: str | None = None,
    fmt: str = "parquet",
    batch_size: int = 16,
    progress: bool = True,
    model_name: str | None = None,
) -> DatasetRun:
    """Decompose every prompt of ``file`` and append the results to ``output`` (see the
    module's docstring), continuing a run that was interrupted."""
    split = check_split(split)
    if fmt not in FORMATS:
        raise InvalidArgumentError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgumentError(f"batch_size must be a positive int, got {batch_size!r}")
    pd = require_pandas()
    if fmt == "parquet":
        _require_parquet()
    path = Path(file)
    adapter = resolve(model)
    rows, digest = check_rows(adapter, path, answer, vs, position)
    settings = Settings(
        model=model_name or (model if isinstance(model, str) else type(model).__name__),
        file=str(path.resolve()),
        sha256=digest,
        rows=rows,
        split=split,
        position=position,
        format=fmt,
    )
    out = _Output(Path(output), settings)
    done, batches, sizes = out.done()
    resumed = done
    out.start(batches, sizes)

    from tqdm.auto import tqdm

    bar = tqdm(total=rows, initial=done, disable=not progress, unit="prompt", desc="dataset")
    worst = 0.0
    stream = read_rows(path, answer, vs)
    for _ in range(done):
        next(stream)
    try:
        while chunk := [r for _, r in zip(range(batch_size), stream, strict=False)]:
            b = decompose(
                adapter,
                [r.prompt for r in chunk],
                answer=[r.answer for r in chunk],
                vs=[r.vs for r in chunk],
                split=split,
                position=position,
            )
            verify_result(b)
            index = list(range(done, done + len(chunk)))
            worst = max(worst, float(np.max(np.abs(b.totals - b.model_logits))))
            prompts = pd.DataFrame(
                {
                    "index": index,
                    "prompt": [d.prompt for d in b],
                    "answer": [d.answer for d in b],
                    "vs": [d.vs for d in b],
                    "position": [d.position for d in b],
                    "total": b.totals,
                    "model_logit": b.model_logits,
                    "constant": b.constants,
                    "scale": [d.scale for d in b],
                }
            )
            terms = batch_frame(b, index).drop(columns=["prompt", "answer", "vs", "position"])
            done += len(chunk)
            out.append(batches, {"prompts": prompts, "terms": terms}, done)
            batches += 1
            bar.update(len(chunk))
    finally:
        bar.close()
    return DatasetRun(out.folder, rows, resumed, worst)


def _require_parquet() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise InvalidArgumentError(
            "Parquet output needs pyarrow, which is not installed; install the extra: "
            "pip install 'symtrans[data]', or write CSV (--format csv)"
        ) from None

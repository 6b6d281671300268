"""``st.decompose_dataset``: every prompt's logit (difference) as an exact sum, and the mean ±
standard deviation of each term over the prompts.

Prompts are decomposed ``batch_size`` at a time (one forward pass per group of equal-length
prompts in a batch) and folded into running sums (Chan et al.'s parallel update of mean and
M2), so with ``keep_values=False`` memory stays flat however many prompts stream by. Each
prompt's identity is checked as it passes (``verify=True``): one that does not add up raises
:class:`~symtrans.errors.IdentityError` naming it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice, repeat
from typing import Any

import numpy as np

from ..adapter import model_info, resolve
from ..errors import InvalidArgumentError
from ..kinds import Split, check_split
from ..labels import Label
from ..results.dataset import DatasetDecomposition
from ..verify import verify as verify_result
from .decompose import decompose


@dataclass
class _Moments:
    """Running count, mean and M2 (sum of squared deviations) of rows of numbers."""

    count: int
    mean: np.ndarray
    m2: np.ndarray

    def add(self, rows: np.ndarray) -> None:  # rows: [n, k]
        n = rows.shape[0]
        mean = rows.mean(axis=0)
        m2 = ((rows - mean) ** 2).sum(axis=0)
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + delta**2 * (self.count * n / total)
        self.count = total

    def std(self) -> np.ndarray:
        """Sample standard deviation (``ddof=1``); zero for a single prompt."""
        if self.count < 2:
            return np.zeros_like(self.mean)
        return np.sqrt(self.m2 / (self.count - 1))


def _items(
    prompts: Iterable[str], answer: str | Iterable[str], vs: str | Iterable[str | None] | None
) -> Iterator[tuple[str, str, str | None]]:
    if isinstance(prompts, str):
        raise InvalidArgumentError(
            "decompose_dataset takes many prompts (a list or any iterable of strings), got one "
            "string; use st.decompose for a single prompt"
        )
    answers: Iterator[str] = repeat(answer) if isinstance(answer, str) else iter(answer)
    versus: Iterator[str | None] = repeat(vs) if vs is None or isinstance(vs, str) else iter(vs)
    for i, prompt in enumerate(prompts):
        try:
            a = next(answers)
            v = next(versus)
        except StopIteration:
            raise InvalidArgumentError(
                f"there are more prompts than answers or vs: prompt #{i} ({prompt!r}) has none; "
                "give one answer (and vs) per prompt, or a single string for all"
            ) from None
        yield prompt, a, v


def decompose_dataset(
    model: Any,
    prompts: Iterable[str],
    answer: str | Iterable[str],
    vs: str | Iterable[str | None] | None = None,
    split: Split = "heads",
    position: int = -1,
    batch_size: int = 16,
    progress: bool = True,
    keep_values: bool = True,
    verify: bool = True,
    remote: bool | str = False,
) -> DatasetDecomposition:
    """Decompose the logit of ``answer`` (minus ``vs``) after every prompt and summarise each
    term by its mean and standard deviation over the prompts.

    ``prompts``, ``answer`` and ``vs`` may be lists or any iterables (one entry per prompt),
    or ``answer``/``vs`` one string for all. ``progress`` shows a tqdm bar on stderr.
    ``keep_values=False`` keeps only running sums: memory stays flat as the dataset grows.
    ``remote`` (an nnsight model): run each batch on NDIF (``True``) or nnsight's local
    simulation of it (``"local"``); see :func:`symtrans.decompose`.
    """
    split = check_split(split)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgumentError(f"batch_size must be a positive int, got {batch_size!r}")
    adapter = resolve(model, remote=remote)
    total = len(prompts) if hasattr(prompts, "__len__") else None  # type: ignore[arg-type]
    items = _items(prompts, answer, vs)

    from tqdm.auto import tqdm

    bar = tqdm(total=total, disable=not progress, unit="prompt", desc="decompose")
    moments: _Moments | None = None
    constants = _Moments(0, np.zeros(1), np.zeros(1))
    labels: tuple[Label, ...] = ()
    totals: list[float] = []
    logits: list[float] = []
    magnitudes: list[float] = []
    roundings: list[float] = []
    kept: list[np.ndarray] = []
    kept_rows: list[tuple[str, str, str | None, int]] = []
    examples: list[tuple[str, str, str | None]] = []
    try:
        while chunk := list(islice(items, batch_size)):
            b = decompose(
                adapter,
                [p for p, _, _ in chunk],
                answer=[a for _, a, _ in chunk],
                vs=[v for _, _, v in chunk],
                split=split,
                position=position,
            )
            if verify:
                verify_result(b)
            if moments is None:
                labels = b.labels
                moments = _Moments(0, np.zeros(len(labels)), np.zeros(len(labels)))
            elif b.labels != labels:
                raise InvalidArgumentError(
                    f"the prompts' terms differ ({len(b.labels)} against {len(labels)}); with "
                    "split='positions' every prompt needs the same length"
                )
            moments.add(b.values)
            constants.add(b.constants[:, None])
            totals.extend(b.totals.tolist())
            logits.extend(b.model_logits.tolist())
            magnitudes.extend(d.magnitude for d in b)
            roundings.extend(float("nan") if d.rounding is None else d.rounding for d in b)
            if keep_values:
                kept.append(b.values)
                kept_rows.extend((d.prompt, d.answer, d.vs, d.position) for d in b)
            examples.extend(chunk[: max(0, 10 - len(examples))])
            bar.update(len(chunk))
    finally:
        bar.close()
    if moments is None:
        raise InvalidArgumentError("no prompts given; pass a non-empty list or iterable")
    return DatasetDecomposition(
        model=model_info(adapter),
        split=split,
        labels=labels,
        count=moments.count,
        mean=moments.mean,
        std=moments.std(),
        constant_mean=float(constants.mean[0]),
        constant_std=float(constants.std()[0]),
        totals=np.array(totals),
        model_logits=np.array(logits),
        magnitudes=np.array(magnitudes),
        roundings=None if np.isnan(roundings).any() else np.array(roundings),
        values=np.concatenate(kept) if keep_values else None,
        examples=tuple(examples),
        items=tuple(kept_rows) if keep_values else None,
    )

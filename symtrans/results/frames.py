"""Tidy frames of decompositions: one row per prompt and term (``prompt, answer, vs,
position, term, kind, layer, head, neuron, source, value``), the constant ``<β, u> + b_U`` as
the row ``bias`` of kind ``constant``, so that each prompt's ``value`` column adds up to its
total. pandas is optional (the ``symtrans[data]`` extra); it is imported only here, late.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidArgumentError
from ..labels import Label

if TYPE_CHECKING:
    import pandas as pd

    from .dataset import DatasetDecomposition
    from .decomposition import BatchDecomposition, Decomposition

COLUMNS = (
    "prompt",
    "answer",
    "vs",
    "position",
    "term",
    "kind",
    "layer",
    "head",
    "neuron",
    "source",
    "value",
)
_INDICES = ("layer", "head", "neuron", "source")
CONSTANT = "bias"


def require_pandas() -> Any:
    """``import pandas``, or an error naming the extra that installs it."""
    try:
        import pandas
    except ImportError:
        raise InvalidArgumentError(
            "tidy frames and dataset files need pandas, which is not installed; install the "
            "extra: pip install 'symtrans[data]'"
        ) from None
    return pandas


_KINDS: dict[str, str] = {}


def _kind(label: Label) -> str:
    """``HeadOut`` -> ``head_out``."""
    name = type(label).__name__
    if name not in _KINDS:
        _KINDS[name] = "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
    return _KINDS[name]


def term_columns(labels: Sequence[Label]) -> dict[str, Any]:
    """Per term (and the constant last): its name, kind and indices (``-1`` where a label
    has none; :func:`frame` makes them missing values)."""
    names = [str(label) for label in labels] + [CONSTANT]
    kinds = [_kind(label) for label in labels] + ["constant"]
    out: dict[str, Any] = {"term": names, "kind": kinds}
    for index in _INDICES:
        values = [getattr(label, index, -1) for label in labels] + [-1]
        out[index] = np.array(values, dtype=np.int64)
    return out


def frame(
    rows: Sequence[tuple[str, str, str | None, int]],
    labels: Sequence[Label],
    values: np.ndarray,
    constants: np.ndarray,
    index: Sequence[int] | None = None,
) -> pd.DataFrame:
    """The tidy frame of ``values`` (``[prompts, terms]``) and ``constants`` (``[prompts]``)
    for the prompts ``rows`` (``(prompt, answer, vs, position)``); ``index`` adds a column
    numbering the prompts (their line in a dataset file)."""
    pd = require_pandas()
    n, k = len(rows), len(labels) + 1
    if values.shape != (n, k - 1) or constants.shape != (n,):
        raise AssertionError(f"{values.shape} values, {constants.shape} constants for {n} rows")
    terms = term_columns(labels)
    data: dict[str, Any] = {}
    if index is not None:
        data["index"] = np.repeat(np.asarray(index, dtype=np.int64), k)
    prompts, answers, versus, positions = zip(*rows, strict=True) if rows else ([], [], [], [])
    repeat = np.repeat(np.arange(n), k)
    # Strings as categoricals: a code per row, each text once (millions of rows stay cheap).
    data["prompt"] = _categorical(pd, prompts, repeat)
    data["answer"] = _categorical(pd, answers, repeat)
    data["vs"] = _categorical(pd, versus, repeat)
    data["position"] = np.asarray(positions, dtype=np.int64)[repeat]
    data["term"] = pd.Categorical.from_codes(np.tile(np.arange(k), n), categories=terms["term"])
    data["kind"] = _categorical(pd, terms["kind"], np.tile(np.arange(k), n))
    for name in _INDICES:
        column = np.tile(terms[name], n)
        data[name] = pd.arrays.IntegerArray(np.maximum(column, 0), column < 0)
    data["value"] = np.concatenate([values, constants[:, None]], axis=1).reshape(-1)
    return pd.DataFrame(data)


def _categorical(pd: Any, values: Sequence[str | None], rows: np.ndarray) -> Any:
    """``values[rows]`` as a pandas Categorical (``None`` a missing value)."""
    categories = list(dict.fromkeys(v for v in values if v is not None))
    index = {c: i for i, c in enumerate(categories)}
    codes = np.array([-1 if v is None else index[v] for v in values], dtype=np.int64)
    return pd.Categorical.from_codes(codes[rows] if len(codes) else codes, categories=categories)


def decomposition_frame(d: Decomposition) -> pd.DataFrame:
    return frame(
        [(d.prompt, d.answer, d.vs, d.position)],
        d.labels,
        d.values[None],
        np.array([d.constant]),
    )


def batch_frame(b: BatchDecomposition, index: Sequence[int] | None = None) -> pd.DataFrame:
    return frame(
        [(d.prompt, d.answer, d.vs, d.position) for d in b],
        b.labels,
        b.values,
        b.constants,
        index,
    )


def dataset_frame(ds: DatasetDecomposition) -> pd.DataFrame:
    if ds.values is None or ds.items is None:
        raise InvalidArgumentError(
            "this DatasetDecomposition kept only the running mean and spread "
            "(keep_values=False), not each prompt's terms; decompose with keep_values=True, "
            "or write the dataset to files with `symtrans dataset` and read them with pandas"
        )
    constants = ds.totals - ds.values.sum(axis=1)
    return frame(list(ds.items), ds.labels, ds.values, constants)

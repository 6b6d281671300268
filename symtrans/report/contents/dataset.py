"""The report of a dataset decomposition: the averaged identity, the terms by |mean|, a
per-head heatmap for the ``heads`` split, the first prompts, and the worst prompt's check."""

from __future__ import annotations

import numpy as np

from ... import labels as lb
from ...results.dataset import DatasetDecomposition
from ...verify import worst
from .. import numbers
from ..document import (
    Cell,
    Column,
    Document,
    Equation,
    Figure,
    Heatmap,
    Paragraph,
    Plain,
    Section,
    Style,
    Table,
    Verification,
)
from ..layout import break_sum
from ..registry import document
from .common import model_line
from .lens import centre, constant, read


@document.register
def _(ds: DatasetDecomposition, style: Style) -> Document:
    m = ds.model
    order = np.argsort(-np.abs(ds.mean), kind="stable")
    shown, rest = order[: style.top_k], order[style.top_k :]
    rows: list[tuple[Cell, ...]] = [
        (rank, str(ds.labels[i]), float(ds.mean[i]), float(ds.std[i]))
        for rank, i in enumerate(shown, start=1)
    ]
    if len(rest):
        rows.append((None, Plain(f"other {len(rest)} terms"), float(np.sum(ds.mean[rest])), None))
    rows.append((None, Plain("bias"), ds.constant_mean, ds.constant_std))
    total_std = float(np.std(ds.totals, ddof=1)) if ds.count > 1 else 0.0
    rows.append((None, Plain("total"), ds.total_mean, total_std))
    columns = (Column("#", "int"), Column("term", "code"), Column("mean"), Column("std"))
    sections = [
        Section(
            "The identity, averaged",
            (
                Paragraph(
                    (
                        f"Each of the {ds.count} logits is an exact sum of its terms (each checked "
                        "against the model); so is their mean, each term read with its own "
                        "prompt's frozen scale. std is the sample standard deviation over "
                        "prompts.",
                    )
                ),
                Equation(
                    tuple(
                        break_sum(
                            r"\mathrm{mean}\left(\mathrm{logit}\right)",
                            [
                                r"\sum_{i} \mathrm{mean}\left(\sqrt{\stN}\thinspace\stScale "
                                r"\stInner{"
                                + read(m)
                                + "}{"
                                + centre(r"\stTermRef{i}", m)
                                + r"}\right)",
                                r"+ \mathrm{mean}\left(" + constant(m) + r"\right)",
                            ],
                            style.width,
                        )
                    )
                ),
            ),
        ),
        Section(
            "Terms by |mean contribution|",
            (
                Table(
                    columns,
                    tuple(rows),
                    rules_after=(len(shown) - 1, len(rows) - 2),
                    strong_rows=(len(rows) - 1,),
                ),
            ),
        ),
    ]
    if ds.split == "heads":
        grid = np.zeros((m.n_layers, m.n_heads))
        for label, value in zip(ds.labels, ds.mean, strict=True):
            if isinstance(label, lb.HeadOut):
                grid[label.layer, label.head] = value
        sections.append(
            Section(
                "Mean contribution of each head",
                (
                    Figure(
                        Heatmap(
                            grid,
                            "head",
                            "layer",
                            tuple(str(h) for h in range(m.n_heads)),
                            tuple(str(layer) for layer in range(m.n_layers)),
                            "mean contribution",
                        ),
                        "Mean direct contribution of each head (layer × head) over the prompts.",
                        "dataset-2",
                    ),
                ),
            )
        )
    n = min(len(ds.examples), 10)
    any_vs = any(vs is not None for _, _, vs in ds.examples[:n])
    sections.append(
        Section(
            f"The first {n} prompts",
            (
                Table(
                    (Column("prompt", "text"), Column("answer", "token"))
                    + ((Column("vs", "token"),) if any_vs else ())
                    + (Column("sum of terms"), Column("model")),
                    tuple(
                        (prompt, answer)
                        + ((vs or "",) if any_vs else ())
                        + (float(ds.totals[i]), float(ds.model_logits[i]))
                        for i, (prompt, answer, vs) in enumerate(ds.examples[:n])
                    ),
                ),
            ),
        )
    )
    claim, check = worst(ds)
    directions = {vs is None for _, _, vs in ds.examples}
    difference = "difference " if directions == {False} else ""
    return Document(
        title=(f"Logit {difference}over {ds.count} prompts",),
        facts=(
            ("Model", (model_line(m),)),
            ("Split", (ds.split,)),
            ("Prompts", (f"{ds.count}; mean model logit {numbers.text(ds.model_logit_mean, 6)}",)),
        ),
        sections=tuple(sections),
        verification=Verification(
            check,
            "sum of terms",
            "model logit",
            f"{claim.subject}, the largest error relative to its tolerance of {ds.count}",
        ),
    )

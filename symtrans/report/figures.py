"""Pictures as SVG (matplotlib) for Markdown and HTML; the LaTeX report draws the same
pictures with pgfplots from the same numbers."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from .document import Bar, Heatmap, LinePlot, Picture, Waterfall

COLORS = {"positive": "#2166ac", "negative": "#b2182b", "total": "#5a5a5a"}


def _svg(fig: object) -> str:
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
    return buffer.getvalue()


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display; never pops up a window
    import matplotlib.pyplot as plt

    # Deterministic SVG (ids and no timestamp) so reports can be golden files; text stays
    # text, and no label is ever read as mathtext.
    plt.rcParams.update(
        {
            "svg.hashsalt": "symtrans",
            "svg.fonttype": "none",
            "text.parse_math": False,
            "font.size": 9,
        }
    )
    return plt


def svg(picture: Picture) -> str:
    """The picture as an SVG document."""
    if isinstance(picture, Waterfall):
        return waterfall_svg(picture.bars, "contributions, largest first", picture.xlabel)
    if isinstance(picture, LinePlot):
        return line_svg(picture)
    return grid_svg(picture)


def waterfall_svg(
    bars: tuple[Bar, ...], title: str, xlabel: str = "contribution to the logit (running sum)"
) -> str:
    """Horizontal waterfall: each term moves the running sum; the last bar is the total."""
    plt = _pyplot()
    n = len(bars)
    fig, ax = plt.subplots(figsize=(6.0, 0.28 * n + 0.9))
    for i, bar in enumerate(bars):
        left, right = sorted((bar.start, bar.end))
        ax.barh(i, right - left, left=left, height=0.7, color=COLORS[bar.kind])
        if i + 1 < n and bars[i + 1].kind != "total":
            ax.plot([bar.end, bar.end], [i + 0.35, i + 0.65], color="#999999", linewidth=0.6)
    ax.set_yticks(range(n), [b.label for b in bars])
    ax.invert_yaxis()
    ax.axvline(0, color="#444444", linewidth=0.6)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=9)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return _svg(fig)


def line_svg(plot: LinePlot) -> str:
    """Series over categorical x positions (e.g. the logit lens over residual prefixes)."""
    plt = _pyplot()
    n = len(plot.x_labels)
    fig, ax = plt.subplots(figsize=(min(0.45 * n + 2.5, 8.0), 3.0))
    for name, values in plot.series:
        ax.plot(range(n), values, marker="o", markersize=3, linewidth=1.2, label=name)
    if plot.reference is not None:
        ax.axhline(plot.reference, color="#888888", linewidth=0.8, linestyle="--")
        if plot.reference_label:
            ax.annotate(
                plot.reference_label,
                (n - 1, plot.reference),
                textcoords="offset points",
                xytext=(0, 4),
                ha="right",
                fontsize=8,
                color="#555555",
            )
    ax.set_xticks(
        range(n), plot.x_labels, rotation=45 if n > 6 else 0, ha="right" if n > 6 else "center"
    )
    ax.set_xlabel(plot.xlabel)
    ax.set_ylabel(plot.ylabel)
    if len(plot.series) > 1:
        ax.legend(fontsize=8, frameon=False)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return _svg(fig)


def grid_svg(heatmap: Heatmap, title: str = "") -> str:
    """A labelled grid on a diverging scale centred at zero."""
    plt = _pyplot()
    rows, cols = heatmap.grid.shape
    limit = float(np.max(np.abs(heatmap.grid))) or 1.0
    fig, ax = plt.subplots(figsize=(min(0.45 * cols + 1.8, 8.0), min(0.4 * rows + 1.2, 8.0)))
    image = ax.imshow(heatmap.grid, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    # long labels stand upright instead of overlapping their neighbours
    upright = max((len(x) for x in heatmap.x_labels), default=0) > 2
    ax.set_xticks(range(cols), heatmap.x_labels, rotation=90 if upright else 0)
    ax.set_yticks(range(rows), heatmap.y_labels)
    ax.set_xlabel(heatmap.xlabel)
    ax.set_ylabel(heatmap.ylabel)
    if cols <= 6 and rows * cols <= 36:  # the numbers, while they fit (as the LaTeX picture)
        from .numbers import Form, text

        form = Form(decimals=2)
        for r in range(rows):
            for c in range(cols):
                value = float(heatmap.grid[r, c])
                dark = abs(value) > 0.6 * limit
                ax.text(
                    c,
                    r,
                    text(value, form=form),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if dark else "#222222",
                )
    if title:
        ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, label=heatmap.colorbar)
    return _svg(fig)

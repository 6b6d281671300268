"""Reports: the decomposition as Markdown, from jinja2 templates shipped in the wheel.

Templates use LaTeX-safe delimiters (``\\VAR{...}``, ``\\BLOCK{...}``) and ``StrictUndefined``:
a template that names a missing variable is an error, never an empty string.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import numpy as np

from .errors import InvalidArgumentError, SymtransError
from .norm import NormKind
from .printing.escape import markdown_text, visible_token
from .printing.latex import latex

if TYPE_CHECKING:
    from .decomposition import Decomposition

FORMATS = ("md",)


def template_dir() -> Path:
    """``symtrans/templates`` in an installed wheel, the repository's ``templates/`` otherwise."""
    packaged = Path(str(resources.files("symtrans"))) / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "templates"


def environment(folder: str | os.PathLike[str] | None = None) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder or template_dir())),
        block_start_string=r"\BLOCK{",
        block_end_string="}",
        variable_start_string=r"\VAR{",
        variable_end_string="}",
        comment_start_string=r"\#{",
        comment_end_string="}",
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
    )


def fmt(value: float, digits: int = 6) -> str:
    """A number with ``digits`` significant digits, no exponent for ordinary sizes."""
    if value == 0:
        return "0"
    text = f"{value:.{digits}g}"
    return text.replace("e-0", "e-").replace("e+0", "e+")


@dataclass(frozen=True)
class Row:
    rank: str
    name: str
    symbol: str
    value: str
    share: str


def table_rows(d: Decomposition, top_k: int) -> list[Row]:
    """Top-k terms by |contribution|, then one row for the rest, then the bias, then the
    total, so that the table itself adds up."""
    order = np.argsort(-np.abs(d.values), kind="stable")
    shown = order[:top_k]
    total_abs = d.magnitude or 1.0
    rows = []
    running = 0.0
    for rank, i in enumerate(shown, start=1):
        term = d.terms[int(i)]
        running += abs(term.value)
        rows.append(
            Row(
                str(rank),
                f"`{term.name}`",
                f"${term.latex}$",
                fmt(term.value),
                f"{running / total_abs:.1%}",
            )
        )
    rest = order[top_k:]
    if len(rest):
        rest_value = float(np.sum(d.values[rest]))
        rows.append(Row("", f"other {len(rest)} terms", "", fmt(rest_value), ""))
    rows.append(
        Row("", "`bias`", r"$\left\langle \beta, u \right\rangle + b_U$", fmt(d.constant), "")
    )
    rows.append(Row("", "**total**", "", f"**{fmt(d.total)}**", ""))
    return rows


def numbers_latex(d: Decomposition) -> str:
    """``logit = √N λ (⟨…⟩ + …) + ⟨β,u⟩ + b_U = total`` with every symbol's value."""
    sigma = d.scale
    inners = []
    for g in d.term_groups:
        value = float(np.sum(d.values[g.start : g.stop])) * sigma
        inners.append(fmt(value) if value >= 0 else f"({fmt(value)})")
    lam = 1.0 / (np.sqrt(d.model.d_model) * sigma)
    parts = [
        rf"\sqrt{{{d.model.d_model}}} \cdot {fmt(lam)} \cdot \left({' + '.join(inners)}\right)"
    ]
    if d.model.has_beta:
        parts.append(fmt(d.beta_term) if d.beta_term >= 0 else f"({fmt(d.beta_term)})")
    parts.append(fmt(d.unembed_bias) if d.unembed_bias >= 0 else f"({fmt(d.unembed_bias)})")
    return " + ".join(parts) + f" = {fmt(d.total)}"


def _display(body: str) -> str:
    return f"$$\n{body}\n$$"


def markdown_context(d: Decomposition, top_k: int) -> dict[str, Any]:
    check = d.check()
    tokens = []
    for i, tok in enumerate(d.token_strings):
        cell = "`" + visible_token(tok).replace("`", "ˋ") + "`"
        tokens.append(f"**{cell}**" if i == d.position else cell)
    return {
        "model": d.model,
        "norm_name": "LayerNorm" if d.model.norm is NormKind.LAYER else "RMSNorm",
        "eps": fmt(d.model.eps, 3),
        "split": d.split,
        "position": d.position,
        "answer_md": "`" + visible_token(d.answer).replace("`", "ˋ") + "`",
        "vs_md": "" if d.vs is None else " − `" + visible_token(d.vs).replace("`", "ˋ") + "`",
        "prompt_md": markdown_text(d.prompt),
        "tokens_md": " ".join(tokens),
        "residual_eq": _display(latex(d.residual_expression)),
        "logit_eq": _display(latex(d.expression)),
        "scale_eq": _display(latex(d.scale_expression)),
        "numbers_eq": _display(latex(d.expression.lhs) + " = " + numbers_latex(d)),
        "rows": table_rows(d, top_k),
        "verdict": "**Pass**" if check.passed else "**FAIL**",
        "check": {
            "total_s": fmt(check.total, 12),
            "model_s": fmt(check.model_logit, 12),
            "diff_s": fmt(check.difference, 3),
            "tol_s": fmt(check.tolerance, 3),
        },
    }


def markdown_report(d: Decomposition, top_k: int = 12, template_folder: str | None = None) -> str:
    try:
        template = environment(template_folder).get_template("report.md")
        return template.render(**markdown_context(d, top_k))
    except jinja2.UndefinedError as exc:
        raise SymtransError(
            f"the report template uses a variable symtrans does not provide ({exc.message}); "
            "fix the template or use the shipped one"
        ) from None
    except jinja2.TemplateNotFound as exc:
        raise SymtransError(
            f"no template {exc.name!r} in {template_folder or template_dir()}; "
            "give a folder that holds report.md"
        ) from None


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: readers see the old
    file or the new one, never a half-written one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_report(d: Decomposition, path: str | os.PathLike[str]) -> str:
    target = Path(path)
    suffix = target.suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise InvalidArgumentError(
            f"cannot write {str(target)!r}: the suffix {target.suffix or '(none)'!r} is not a "
            f"supported report format; use one of {', '.join('.' + f for f in FORMATS)}"
        )
    text = markdown_report(d)
    try:
        write_atomic(target, text)
    except OSError as exc:
        raise SymtransError(
            f"cannot write {str(target)!r}: {exc.strerror or exc}; choose a writable folder"
        ) from None
    return str(target)

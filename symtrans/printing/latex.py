"""LaTeX for symtrans's nodes, in seed 004's notation, by dispatch (``_print_<Node>``)."""

from __future__ import annotations

from typing import Any

import sympy
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE

from .. import expression as ex
from .escape import latex_text


def _token(token: str) -> str:
    # Seed 004 writes \overline{\text{Ireland}}; the leading space is shown in the token list.
    return r"\text{" + latex_text(token.strip() or token) + "}"


class SymtransLatexPrinter(LatexPrinter):
    """sympy's LaTeX printer, taught symtrans's nodes. Terms keep model order."""

    printmethod = "_symtrans_latex"
    _default_settings: dict[str, Any] = {**LatexPrinter._default_settings, "order": "none"}

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        # Keep only user-facing settings (a parent printer's also holds derived keys).
        settings = {k: v for k, v in (settings or {}).items() if k in self._default_settings}
        if settings.get("order") in (None, "lex"):
            settings["order"] = "none"
        super().__init__(settings)

    def _index(self, value: sympy.Expr) -> str:
        return self._print(value)

    def _print_TokenEmbedding(self, node: ex.TokenEmbedding) -> str:
        return r"\underline{" + _token(node.token) + "}"

    def _print_Unembedding(self, node: ex.Unembedding) -> str:
        return r"\overline{" + _token(node.token) + "}"

    def _print_UnembeddingBias(self, node: ex.UnembeddingBias) -> str:
        return r"b_U\left[" + _token(node.token) + r"\right]"

    def _print_Logit(self, node: ex.Logit) -> str:
        return r"\mathrm{logit}_{" + self._index(node.args[1]) + r"}\left(" + _token(
            node.token
        ) + r"\right)"

    def _print_PositionalEmbedding(self, node: ex.PositionalEmbedding) -> str:
        return "P_{" + self._index(node.args[0]) + "}"

    def _print_Residual(self, node: ex.Residual) -> str:
        return "x^{" + self._index(node.args[0]) + "}_{" + self._index(node.args[1]) + "}"

    def _print_BlockOutput(self, node: ex.BlockOutput) -> str:
        return r"\Delta x^{" + self._index(node.args[0]) + "}_{" + self._index(node.args[1]) + "}"

    def _print_AttentionOutput(self, node: ex.AttentionOutput) -> str:
        return "A^{" + self._index(node.args[0]) + "}_{" + self._index(node.args[1]) + "}"

    def _print_MLPOutput(self, node: ex.MLPOutput) -> str:
        return "M^{" + self._index(node.args[0]) + "}_{" + self._index(node.args[1]) + "}"

    def _print_HeadOutput(self, node: ex.HeadOutput) -> str:
        layer, head, pos = (self._index(a) for a in node.args)
        return f"H^{{{layer},{head}}}_{{{pos}}}"

    def _print_HeadSourceOutput(self, node: ex.HeadSourceOutput) -> str:
        layer, head, pos, src = (self._index(a) for a in node.args)
        return (
            f"A^{{{layer},{head}}}_{{{pos},{src}}}\\, v^{{{layer},{head}}}_{{{src}}}"
            f" W_O^{{{layer},{head}}}"
        )

    def _print_AttentionBias(self, node: ex.AttentionBias) -> str:
        return "b_O^{" + self._index(node.args[0]) + "}"

    def _print_NeuronOutput(self, node: ex.NeuronOutput) -> str:
        layer, neuron, pos = (self._index(a) for a in node.args)
        return f"a^{{{layer}}}_{{{pos},{neuron}}} W_{{\\mathrm{{out}}}}^{{{layer}}}[{neuron}]"

    def _print_MLPBias(self, node: ex.MLPBias) -> str:
        return r"b_{\mathrm{out}}^{" + self._index(node.args[0]) + "}"

    def _print_Inner(self, node: ex.Inner) -> str:
        left, right = (self._print(a) for a in node.args)
        return r"\left\langle " + left + ", " + right + r" \right\rangle"

    def _print_Center(self, node: ex.Center) -> str:
        return r"c\left(" + self._print(node.args[0]) + r"\right)"

    def _print_Hadamard(self, node: ex.Hadamard) -> str:
        left, right = (self.parenthesize(a, PRECEDENCE["Mul"]) for a in node.args)
        return left + r" \odot " + right

    def _print_SquaredNorm(self, node: ex.SquaredNorm) -> str:
        return r"\left|" + self._print(node.args[0]) + r"\right|^{2}"

    def _print_OrderedSum(self, node: ex.OrderedSum) -> str:
        return " + ".join(self._print(a) for a in node.args)

    def _print_Product(self, node: ex.Product) -> str:
        return " ".join(self.parenthesize(a, PRECEDENCE["Mul"]) for a in node.args)

    def _print_Difference(self, node: ex.Difference) -> str:
        left, right = node.args
        return self._print(left) + " - " + self.parenthesize(right, PRECEDENCE["Add"])


def latex(expr: sympy.Basic, **settings: Any) -> str:
    """LaTeX of a symtrans expression (or of any sympy expression)."""
    return SymtransLatexPrinter(settings).doprint(expr)

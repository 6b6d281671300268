"""LaTeX for symtrans's nodes, in seed 004's notation, by dispatch (``_print_<Node>``).

With ``use_macros=True`` the printer writes the macros of ``symtrans.sty`` (``\\stEmb{of}``)
for documents that load it; otherwise their expansions (``\\underline{\\text{of}}``), which
KaTeX, MathJax 2 and 3, amsmath and a GFM Markdown renderer all read the same way
(:func:`~symtrans.printing.notation.plain`).
"""

from __future__ import annotations

from typing import Any

import sympy
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE

from .escape import latex_text
from .notation import render

# The nodes of symtrans.expression are found by their class names (``_print_<Node>``): this
# module does not import them (expression imports the printer).

_SYMBOL_MACROS = {
    "gamma": "stGamma",
    "beta": "stBeta",
    "epsilon": "stEps",
    "lambda": "stScale",
    "N": "stN",
    "u": "stDir",
}


class SymtransLatexPrinter(LatexPrinter):
    """sympy's LaTeX printer, taught symtrans's nodes. Terms keep model order."""

    printmethod = "_symtrans_latex"
    _default_settings: dict[str, Any] = {
        **LatexPrinter._default_settings,
        "order": "none",
        "use_macros": False,
    }

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        # Keep only user-facing settings (a parent printer's also holds derived keys).
        settings = {k: v for k, v in (settings or {}).items() if k in self._default_settings}
        if settings.get("order") in (None, "lex"):
            settings["order"] = "none"
        super().__init__(settings)

    # -- helpers -------------------------------------------------------------------------
    def _m(self, name: str, *args: str) -> str:
        return render(name, *args, use_macros=self._settings["use_macros"])

    def _tok(self, token: str) -> str:
        # Seed 004 writes \overline{\text{Ireland}}; the leading space is shown in the token list.
        # Macro form here; plain() rewrites it for the other readers.
        return latex_text(token.strip() or token, macros=True)

    def _p(self, value: sympy.Basic) -> str:
        return self._print(value)

    # -- nodes ---------------------------------------------------------------------------
    def _print_Symbol(self, expr: sympy.Symbol, style: str = "plain") -> str:
        if self._settings["use_macros"] and expr.name in _SYMBOL_MACROS:
            return "\\" + _SYMBOL_MACROS[expr.name]
        return super()._print_Symbol(expr, style=style)

    def _print_TokenEmbedding(self, node: Any) -> str:
        return self._m("stEmb", self._tok(node.token))

    def _print_Unembedding(self, node: Any) -> str:
        return self._m("stUnemb", self._tok(node.token))

    def _print_UnembeddingBias(self, node: Any) -> str:
        return self._m("stUnembBias", self._tok(node.token))

    def _print_Logit(self, node: Any) -> str:
        return self._m("stLogit", self._p(node.args[1]), self._tok(node.token))

    def _print_PositionalEmbedding(self, node: Any) -> str:
        return self._m("stPos", self._p(node.args[0]))

    def _print_Residual(self, node: Any) -> str:
        return self._m("stResid", *(self._p(a) for a in node.args))

    def _print_BlockOutput(self, node: Any) -> str:
        return self._m("stBlock", *(self._p(a) for a in node.args))

    def _print_AttentionOutput(self, node: Any) -> str:
        return self._m("stAttn", *(self._p(a) for a in node.args))

    def _print_MLPOutput(self, node: Any) -> str:
        return self._m("stMLP", *(self._p(a) for a in node.args))

    def _print_HeadOutput(self, node: Any) -> str:
        return self._m("stHead", *(self._p(a) for a in node.args))

    def _print_HeadSourceOutput(self, node: Any) -> str:
        return self._m("stHeadSrc", *(self._p(a) for a in node.args))

    def _print_AttentionBias(self, node: Any) -> str:
        return self._m("stAttnBias", self._p(node.args[0]))

    def _print_NeuronOutput(self, node: Any) -> str:
        return self._m("stNeuron", *(self._p(a) for a in node.args))

    def _print_MLPBias(self, node: Any) -> str:
        return self._m("stMLPBias", self._p(node.args[0]))

    def _print_ExpertOutput(self, node: Any) -> str:
        return self._m("stExpert", *(self._p(a) for a in node.args))

    def _print_ExpertNeuronOutput(self, node: Any) -> str:
        return self._m("stExpertNeuron", *(self._p(a) for a in node.args))

    def _print_SharedExpertOutput(self, node: Any) -> str:
        return self._m("stSharedExpert", *(self._p(a) for a in node.args))

    def _print_SharedNeuronOutput(self, node: Any) -> str:
        return self._m("stSharedNeuron", *(self._p(a) for a in node.args))

    def _print_Ln1BiasNode(self, node: Any) -> str:
        return self._m("stLnOneBias", self._p(node.args[0]))

    def _print_HeadBias(self, node: Any) -> str:
        kind, layer, head = node.args
        return self._m("stHeadBias", str(kind), self._p(layer), self._p(head))

    def _print_EffectiveEmbedding(self, node: Any) -> str:
        return self._m("stEffEmb" if node.attention else "stEffEmbMLP", self._tok(node.token))

    def _print_RemainderOf(self, node: Any) -> str:
        return self._m("stRemainder", self._p(node.args[0]))

    def _print_ParallelPart(self, node: Any) -> str:
        return self._m("stParallel", self._p(node.args[0]))

    def _print_PerpendicularPart(self, node: Any) -> str:
        return self._m("stPerp", self._p(node.args[0]))

    def _print_TermRef(self, node: Any) -> str:
        return self._m("stTermRef", self._p(node.args[0]))

    def _print_Inner(self, node: Any) -> str:
        return self._m("stInner", *(self._p(a) for a in node.args))

    def _print_Center(self, node: Any) -> str:
        return self._m("stCenter", self._p(node.args[0]))

    def _print_SquaredNorm(self, node: Any) -> str:
        return self._m("stNormSq", self._p(node.args[0]))

    def _print_Hadamard(self, node: Any) -> str:
        left, right = (self.parenthesize(a, PRECEDENCE["Mul"]) for a in node.args)
        return left + r" \odot " + right

    def _print_Sum(self, expr: sympy.Sum) -> str:
        # One \sum per index (never \substack, whose \\ a Markdown renderer would eat).
        sums = "".join(
            rf"\sum_{{{self._print(var)}={self._print(lo)}}}^{{{self._print(hi)}}} "
            for var, lo, hi in expr.limits
        )
        body = self.parenthesize(expr.function, PRECEDENCE["Mul"], strict=True)
        return sums + body

    def _print_OrderedSum(self, node: Any) -> str:
        return " + ".join(self._print(a) for a in node.args)

    def _print_Product(self, node: Any) -> str:
        return " ".join(self.parenthesize(a, PRECEDENCE["Mul"]) for a in node.args)

    def _print_Difference(self, node: Any) -> str:
        left, right = node.args
        return self._print(left) + " - " + self.parenthesize(right, PRECEDENCE["Add"])


def latex(expr: sympy.Basic, **settings: Any) -> str:
    """LaTeX of a symtrans expression (or of any sympy expression)."""
    return SymtransLatexPrinter(settings).doprint(expr)

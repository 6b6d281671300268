"""The README's picture of a paper page with a report fragment in it: a two-column IEEEtran
paper that `\\input`s the demo's decomposition (heads split) after `\\usepackage{symtrans}`,
compiled with pdflatex; its first two pages as docs/paper-page-1.png and -2.png. Run by
`make docs`."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PAPER = r"""\documentclass[conference]{IEEEtran}
\usepackage{microtype}
\usepackage{amsmath}
\usepackage{symtrans}
\usepackage{hyperref}
\renewcommand{\stBlockSep}{\smallskip}  % a fragment adds no space of its own unless asked
\begin{document}
\title{Where the Capital Comes From}
\author{\IEEEauthorblockN{A. Author}\IEEEauthorblockA{symtrans demo}}
\maketitle
\begin{abstract}
A two-layer model completes ``Dublin is the capital city of'' with `` Ireland''. We write its
logit as an exact sum of the residual stream's terms read through the final layer norm with
its scale frozen, and check that the sum is the model's own logit.
\end{abstract}
\section{The decomposition}
The report below is symtrans's LaTeX fragment, \verb|\input| unchanged after
\verb|\usepackage{symtrans}|: its table breaks across the columns, its notation is the
package's macros, and its verification line is computed, not written.

\input{decomposition.tex}

\section{The largest neurons}
The same prompt split by neuron, 40 rows: a table longer than a column.

\input{neurons.tex}
\end{document}
"""


def main() -> int:
    import symtrans as st
    from symtrans.models.facts import DEMO_ANSWER, DEMO_PROMPT

    model = st.load_model("tiny-capitals")
    heads = st.decompose(model, DEMO_PROMPT, answer=DEMO_ANSWER, split="heads")
    neurons = st.decompose(model, DEMO_PROMPT, answer=DEMO_ANSWER, split="neurons")
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        st.write_sty(folder)
        (folder / "decomposition.tex").write_text(heads.to_latex())
        (folder / "neurons.tex").write_text(neurons.to_latex(top_k=40))
        (folder / "paper.tex").write_text(PAPER)
        for _ in range(2):
            subprocess.run(
                ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "paper.tex"],
                cwd=folder,
                check=True,
                capture_output=True,
            )
        subprocess.run(
            ["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "2", "paper.pdf", "page"],
            cwd=folder,
            check=True,
        )
        for page in (1, 2):
            target = ROOT / "docs" / f"paper-page-{page}.png"
            shutil.copyfile(folder / f"page-{page}.png", target)
            print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

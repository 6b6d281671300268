"""symtrans: a transformer's logit as an exact, verified, symbolic sum of its parts.

import symtrans as st
model = st.load_model("tiny-capitals")
d = st.decompose(model, "Dublin is the capital city of", answer=" Ireland")
d.verify()
print(d.to_markdown())

Importing symtrans is cheap: each public name is imported on first use (PEP 562), so neither
torch nor TransformerLens loads until a model is touched.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .errors import (
    IdentityError,
    InvalidArgumentError,
    LatexCompileError,
    LatexNotFoundError,
    ModelNotFoundError,
    NonFiniteError,
    SymtransError,
    TemplateError,
    TokenizationError,
    UnsafeCheckpointError,
    UnsupportedModelError,
)
from .kinds import SPLITS

__version__ = "0.1.0"

# public name -> the module that defines it
_LAZY = {
    "ablate": "symtrans.analyses.ablation",
    "attention_scores": "symtrans.analyses.attention",
    "decompose": "symtrans.analyses.decompose",
    "decompose_dataset": "symtrans.analyses.dataset",
    "effective_embedding": "symtrans.analyses.effective",
    "expand_head": "symtrans.analyses.paths",
    "logit_lens": "symtrans.analyses.logit_lens",
    "patch": "symtrans.analyses.patching",
    "project": "symtrans.analyses.projection",
    "load_model": "symtrans.adapter.loading",
    "BatchDecomposition": "symtrans.results.decomposition",
    "Decomposition": "symtrans.results.decomposition",
    "Term": "symtrans.results.decomposition",
    "DatasetDecomposition": "symtrans.results.dataset",
    "LogitLens": "symtrans.results.lens",
    "Patching": "symtrans.results.patching",
    "PatchExplanation": "symtrans.results.patching",
    "Path": "symtrans.results.paths",
    "PathExpansion": "symtrans.results.paths",
    "Projection": "symtrans.results.projection",
    "ScoreDecomposition": "symtrans.results.scores",
    "write_sty": "symtrans.report",
}

__all__ = [
    "SPLITS",
    "BatchDecomposition",
    "DatasetDecomposition",
    "Decomposition",
    "IdentityError",
    "InvalidArgumentError",
    "LatexCompileError",
    "LatexNotFoundError",
    "LogitLens",
    "ModelNotFoundError",
    "NonFiniteError",
    "PatchExplanation",
    "Patching",
    "Path",
    "PathExpansion",
    "Projection",
    "ScoreDecomposition",
    "SymtransError",
    "TemplateError",
    "Term",
    "TokenizationError",
    "UnsafeCheckpointError",
    "UnsupportedModelError",
    "ablate",
    "attention_scores",
    "decompose",
    "decompose_dataset",
    "effective_embedding",
    "expand_head",
    "load_model",
    "logit_lens",
    "patch",
    "project",
    "write_sty",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'symtrans' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from .adapter.loading import load_model
    from .analyses.ablation import ablate
    from .analyses.attention import attention_scores
    from .analyses.dataset import decompose_dataset
    from .analyses.decompose import decompose
    from .analyses.effective import effective_embedding
    from .analyses.logit_lens import logit_lens
    from .analyses.patching import patch
    from .analyses.paths import expand_head
    from .analyses.projection import project
    from .report import write_sty
    from .results.dataset import DatasetDecomposition
    from .results.decomposition import BatchDecomposition, Decomposition, Term
    from .results.lens import LogitLens
    from .results.patching import PatchExplanation, Patching
    from .results.paths import Path, PathExpansion
    from .results.projection import Projection
    from .results.scores import ScoreDecomposition

"""symtrans: a transformer's logit as an exact, verified, symbolic sum of its parts.

import symtrans as st
model = st.load_model("tiny-capitals")
d = st.decompose(model, "Dublin is the capital city of", answer=" Ireland")
d.verify()
print(d.to_markdown())
"""

from .ablation import ablate
from .adapter.loading import load_model
from .attention import ScoreDecomposition, attention_scores
from .dataset import DatasetDecomposition, decompose_dataset
from .decompose import decompose
from .decomposition import BatchDecomposition, Decomposition, Term
from .effective import effective_embedding
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
from .logit_lens import LogitLens, logit_lens
from .paths import Path, PathExpansion, expand_head
from .projection import Projection, project
from .report import write_sty
from .splits import SPLITS

__version__ = "0.1.0"

__all__ = [
    "SPLITS",
    "BatchDecomposition",
    "DatasetDecomposition",
    "Decomposition",
    "IdentityError",
    "LogitLens",
    "Path",
    "PathExpansion",
    "Projection",
    "ScoreDecomposition",
    "InvalidArgumentError",
    "LatexCompileError",
    "LatexNotFoundError",
    "ModelNotFoundError",
    "NonFiniteError",
    "SymtransError",
    "TemplateError",
    "Term",
    "TokenizationError",
    "UnsafeCheckpointError",
    "UnsupportedModelError",
    "ablate",
    "attention_scores",
    "decompose",
    "effective_embedding",
    "decompose_dataset",
    "expand_head",
    "load_model",
    "logit_lens",
    "project",
    "write_sty",
]

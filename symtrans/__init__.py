"""symtrans: a transformer's logit as an exact, verified, symbolic sum of its parts.

import symtrans as st
model = st.load_model("tiny-capitals")
d = st.decompose(model, "Dublin is the capital city of", answer=" Ireland")
d.verify()
print(d.to_markdown())
"""

from .adapter.loading import load_model
from .decompose import decompose
from .decomposition import BatchDecomposition, Decomposition, Term
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
from .report import write_sty
from .splits import SPLITS

__version__ = "0.1.0"

__all__ = [
    "SPLITS",
    "BatchDecomposition",
    "Decomposition",
    "IdentityError",
    "LogitLens",
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
    "decompose",
    "load_model",
    "logit_lens",
    "write_sty",
]

"""Results: plain, frozen data (numpy numbers and typed labels, never tensors), each listing
the equalities it asserts (:meth:`~.base.Result.claims`). Checking them is
:mod:`symtrans.verify`'s job and rendering them :mod:`symtrans.report`'s; the conveniences
(``verify``, ``save``, ``to_latex``, ``_repr_*_``, ``d.ablate``) are one-line late calls."""

from .base import Result
from .claims import Claim
from .dataset import DatasetDecomposition
from .decomposition import BatchDecomposition, Decomposition, Term
from .lens import LogitLens
from .model import ModelInfo
from .paths import Path, PathExpansion
from .projection import Effect, Projection, SourcePart
from .scores import ScoreDecomposition

__all__ = [
    "BatchDecomposition",
    "Claim",
    "DatasetDecomposition",
    "Decomposition",
    "Effect",
    "LogitLens",
    "ModelInfo",
    "Path",
    "PathExpansion",
    "Projection",
    "Result",
    "ScoreDecomposition",
    "SourcePart",
    "Term",
]

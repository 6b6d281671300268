"""One error hierarchy for everything symtrans refuses to do.

Every message says three things: what was expected, what was given, and what to do.
The CLI prints the message as one line and exits 1 for :class:`IdentityError`
(the identity does not hold) and 2 for every other :class:`SymtransError` (bad input).
"""

from __future__ import annotations


class SymtransError(Exception):
    """Base class of every error symtrans raises on purpose."""

    exit_code: int = 2


class IdentityError(SymtransError):
    """The terms do not add up to the model's own logit within the tolerance."""

    exit_code = 1


class UnsupportedModelError(SymtransError):
    """The model has a piece symtrans cannot write as an exact sum (never a silent wrong sum)."""


class TokenizationError(SymtransError):
    """An answer or `vs` string is not a single token, or a prompt tokenizes to nothing."""


class ModelNotFoundError(SymtransError):
    """A model name or path that is neither embedded, nor a local directory, nor reachable."""


class InvalidArgumentError(SymtransError, ValueError):
    """An argument outside what the function accepts (split, position, lengths of a batch...)."""


class NonFiniteError(SymtransError):
    """NaN or inf in the model's weights or activations: no sum of terms is meaningful."""


class UnsafeCheckpointError(SymtransError):
    """A model folder holds only a pickle checkpoint, which can run code when loaded."""


class LatexNotFoundError(SymtransError):
    """No LaTeX on this machine: a .pdf cannot be written (the message says how to install)."""


class LatexCompileError(SymtransError):
    """pdflatex failed on a document symtrans wrote (a symtrans bug or a user's template)."""


class TemplateError(SymtransError):
    """A report template is missing or uses a variable symtrans does not provide."""

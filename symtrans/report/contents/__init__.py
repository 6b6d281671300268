"""What each result's report says: one module per result type, each registering its
:func:`~symtrans.report.registry.document` builder when imported."""

from . import dataset, decomposition, lens, patching, paths, projection, scores

__all__ = ["dataset", "decomposition", "lens", "patching", "paths", "projection", "scores"]

"""The analyses: one module each, functions of (model, inputs) that run the model through
:mod:`symtrans.trace` and return plain results (:mod:`symtrans.results`)."""

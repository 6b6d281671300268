"""The one place that runs a model and turns its activations into numbers: the forward pass
(:mod:`.run`), the splits each defined once (:mod:`.splits`), their evaluation under the frozen
final norm (:mod:`.evaluate`), every position of a block's input (:mod:`.blocks`) and the
checks of what callers pass in (:mod:`.inputs`)."""

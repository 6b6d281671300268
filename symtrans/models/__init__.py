"""The models that ship inside symtrans (no model hub is needed to use it).

Each is a tiny model trained by ``scripts/train_tiny_models.py`` on a synthetic corpus of
"<City> is the capital city of <Country>" facts plus filler text, saved in Hugging Face format
(safetensors + tokenizer) under ``symtrans/models/data/<name>/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DATA_DIR = Path(__file__).parent / "data"
DEFAULT_MODEL = "tiny-capitals"


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    architecture: str
    description: str

    @property
    def path(self) -> Path:
        return DATA_DIR / self.name


EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    m.name: m
    for m in (
        EmbeddedModel(
            "tiny-capitals",
            "GPT-2",
            "2 layers, 4 heads, d_model 64, d_mlp 256; LayerNorm, learned positions, "
            "tied embeddings",
        ),
        EmbeddedModel(
            "tiny-capitals-neox",
            "GPT-NeoX",
            "2 layers, 4 heads, d_model 64, d_mlp 256; parallel attention and MLP, partial rotary "
            "(25%), untied embeddings",
        ),
    )
}

"""Factual-recall data shared by the embedded tiny models and their training script.

The tiny models in ``symtrans/models/data`` were trained on every ``(city, country)``
pair in :data:`CAPITALS`, written with :data:`FACT_TEMPLATE` followed by the country.
Every city and country name is a single word of ASCII letters, and the tokenizer of the
embedded models encodes each of them (``" Dublin"``, ``"Dublin"``, ``" Ireland"``) as a
single token. This module is deliberately free of heavy imports.
"""

from __future__ import annotations

from typing import Final

CAPITALS: Final[tuple[tuple[str, str], ...]] = (
    ("Dublin", "Ireland"),
    ("Paris", "France"),
    ("Berlin", "Germany"),
    ("Madrid", "Spain"),
    ("Rome", "Italy"),
    ("Lisbon", "Portugal"),
    ("Vienna", "Austria"),
    ("Athens", "Greece"),
    ("Warsaw", "Poland"),
    ("Budapest", "Hungary"),
    ("Oslo", "Norway"),
    ("Stockholm", "Sweden"),
    ("Helsinki", "Finland"),
    ("Copenhagen", "Denmark"),
    ("Brussels", "Belgium"),
    ("Amsterdam", "Netherlands"),
    ("Bern", "Switzerland"),
    ("Moscow", "Russia"),
    ("Kyiv", "Ukraine"),
    ("Bucharest", "Romania"),
    ("Sofia", "Bulgaria"),
    ("Belgrade", "Serbia"),
    ("Zagreb", "Croatia"),
    ("Ljubljana", "Slovenia"),
    ("Bratislava", "Slovakia"),
    ("Tallinn", "Estonia"),
    ("Riga", "Latvia"),
    ("Vilnius", "Lithuania"),
    ("Reykjavik", "Iceland"),
    ("Ankara", "Turkey"),
    ("Cairo", "Egypt"),
    ("Nairobi", "Kenya"),
    ("Tokyo", "Japan"),
    ("Beijing", "China"),
    ("Bangkok", "Thailand"),
    ("Hanoi", "Vietnam"),
    ("Jakarta", "Indonesia"),
    ("Manila", "Philippines"),
    ("Canberra", "Australia"),
    ("Ottawa", "Canada"),
    ("Lima", "Peru"),
    ("Santiago", "Chile"),
    ("Bogota", "Colombia"),
    ("Caracas", "Venezuela"),
    ("Havana", "Cuba"),
    ("Tehran", "Iran"),
    ("Baghdad", "Iraq"),
    ("Kabul", "Afghanistan"),
    ("Islamabad", "Pakistan"),
    ("Dhaka", "Bangladesh"),
    ("Kathmandu", "Nepal"),
    ("Accra", "Ghana"),
    ("Dakar", "Senegal"),
    ("Rabat", "Morocco"),
    ("Tunis", "Tunisia"),
    ("Algiers", "Algeria"),
    ("Kampala", "Uganda"),
    ("Amman", "Jordan"),
    ("Beirut", "Lebanon"),
    ("Quito", "Ecuador"),
    ("Montevideo", "Uruguay"),
    ("Brasilia", "Brazil"),
)
"""Real ``(capital city, country)`` pairs; single-word ASCII names, all distinct."""

FACT_TEMPLATE: Final[str] = "{city} is the capital city of"
"""Prompt template; the model's next token is the country with a leading space."""

DEMO_PROMPT: Final[str] = "Dublin is the capital city of"
"""The canonical demo prompt (no leading space, no BOS)."""

DEMO_ANSWER: Final[str] = " Ireland"
"""The expected next token for :data:`DEMO_PROMPT`."""


def fact_prompt(city: str) -> str:
    """Return the factual-recall prompt for ``city``, e.g. ``"Dublin is the capital city of"``."""
    return FACT_TEMPLATE.format(city=city)

"""Answering a shopper's question about one product from its data: stock, price, specs.

Pure: the product and the question in, the answer out. The question is read
for a size and a colour (matched against the product's own variants), price
words, and spec names (matched against the product's own spec keys with a few
everyday synonyms). Nothing is invented: what the data does not say, the
answer does not claim.
"""

from __future__ import annotations

import re

from bot.store.models import Product, Variant
from bot.store.parsing import words
from bot.store.texts import money

__all__ = ["answer_product_question"]

_PRICE = {"price", "cost", "much", "expensive", "cheap", "euro", "eur", "sale", "discount"}
_STOCK = {"stock", "available", "availability", "left", "buy", "order", "get", "have"}
#: Everyday words → words that appear in spec names.
_SYNONYMS = {
    "heavy": "weight", "weigh": "weight", "light": "weight", "lightweight": "weight",
    "waterproof": "waterproof", "rain": "waterproof", "water": "waterproof",
    "warm": "temperature", "cold": "temperature", "winter": "temperature",
    "made": "material", "fabric": "material", "material": "material",
    "big": "size", "dimension": "size", "pack": "packed", "packed": "packed",
    "hold": "capacity", "litre": "capacity", "liter": "capacity", "volume": "capacity",
    "fit": "fit", "sleep": "capacity", "people": "capacity", "person": "capacity",
    "burn": "burn", "boil": "boil", "battery": "battery", "bright": "brightness",
}
# Letter sizes only in capitals ("I'm" has an "m"); shoe sizes as "EU 42" or a bare 36-48.
_SIZE_WORD = re.compile(r"\b(XXS|XS|S|M|L|XL|XXL|(?:EU|eu)\s?\d{2}|(?:3[5-9]|4[0-8])(?:\.5)?)\b")
_SIZE_NAMES = {"extra small": "XS", "extra large": "XL", "small": "S", "medium": "M",
               "large": "L"}


def _variant_label(variant: Variant) -> str:
    return ", ".join(part for part in (variant.size, variant.colour) if part) or "one size"


def _asked_variants(product: Product, question: str) -> tuple[list[Variant], str | None]:
    """Variants matching the size and colour named in the question, and what was named."""
    said = words(question)
    colours = {v.colour for v in product.variants if v.colour}
    colour = next((c for c in colours if words(c) & said and words(c) <= said), None)
    sizes = {v.size for v in product.variants if v.size}
    lowered = question.lower()
    tokens = [code for name, code in _SIZE_NAMES.items() if re.search(rf"\b{name}\b", lowered)]
    tokens = tokens[:1] + _SIZE_WORD.findall(question)
    size = None
    for token in tokens:
        normal = token.upper().replace("EU", "").strip()
        size = next((s for s in sizes if s.upper().replace("EU", "").strip() == normal), normal)
        break
    if size is None and colour is None:
        return [], None
    chosen = [v for v in product.variants
              if (size is None or v.size == size) and (colour is None or v.colour == colour)]
    return chosen, " ".join(part for part in (size, colour) if part)


def _stock_answer(product: Product, question: str) -> str | None:
    chosen, named = _asked_variants(product, question)
    if named is None:
        return None
    if not chosen:
        return f"The {product.name} doesn't come in {named}. It comes in: " + "; ".join(
            _variant_label(v) for v in product.variants) + "."
    in_stock = [v for v in chosen if v.stock > 0]
    if in_stock:
        detail = "; ".join(f"{_variant_label(v)}: {v.stock} left" if v.stock <= 5
                           else f"{_variant_label(v)}: in stock" for v in in_stock)
        return f"Yes, the {product.name} in {named} is in stock ({detail})."
    others = [v for v in product.variants if v.stock > 0]
    text = f"Sorry, the {product.name} in {named} is out of stock right now."
    if others:
        text += " In stock: " + "; ".join(_variant_label(v) for v in others[:8]) + "."
    return text + " You can ask to be emailed when it's back on the product page."


def _spec_answer(product: Product, said: set[str]) -> str | None:
    wanted = said | {_SYNONYMS[w] for w in said if w in _SYNONYMS}
    hits = [(name, value) for name, value in product.specs.items() if words(name) & wanted]
    if not hits:
        return None
    return "; ".join(f"{name}: {value}" for name, value in hits) + "."


def answer_product_question(product: Product, question: str) -> str:
    """The best answer the product data gives to ``question``."""
    said = words(question)
    answers = []
    stock = _stock_answer(product, question)
    if stock is not None:
        answers.append(stock)
    if said & _PRICE:
        answers.append(f"The {product.name} costs {money(product.price, product.currency)}.")
    spec = _spec_answer(product, said)
    if spec is not None:
        answers.append(f"{product.name} — {spec}")
    if not answers and said & _STOCK:
        available = [v for v in product.variants if v.stock > 0]
        if not available:
            answers.append(f"The {product.name} is out of stock right now.")
        elif len(product.variants) <= 1:
            answers.append(f"Yes, the {product.name} is in stock.")
        else:
            answers.append(f"The {product.name} is in stock in: "
                           + "; ".join(_variant_label(v) for v in available) + ".")
    if answers:
        return "\n".join(answers)
    specs = "; ".join(f"{name}: {value}" for name, value in list(product.specs.items())[:4])
    return (f"{product.name} — {money(product.price, product.currency)}. "
            f"{product.description}".strip() + (f"\n{specs}." if specs else ""))

"""Product questions answered from the product's own data, never invented."""

from __future__ import annotations

from bot.store.models import Product, Variant
from bot.store.questions import answer_product_question

JACKET = Product(
    sku="JKT", name="Stormline rain jacket", category="Clothing", price=159,
    description="A light waterproof shell.",
    specs={"weight": "380 g", "waterproof rating": "20,000 mm", "material": "recycled nylon"},
    variants=[Variant(sku="J-M-B", size="M", colour="Blue", stock=4),
              Variant(sku="J-L-B", size="L", colour="Blue", stock=0),
              Variant(sku="J-L-R", size="L", colour="Red", stock=9)],
)
BOOTS = Product(sku="B", name="Trailrunner hiking boots", category="Footwear", price=139,
                variants=[Variant(sku="b42", size="EU 42", stock=3),
                          Variant(sku="b43", size="EU 43", stock=0)])


def test_stock_for_a_size_and_colour() -> None:
    answer = answer_product_question(JACKET, "do you have it in medium blue?")
    assert answer.startswith("Yes") and "M, Blue: 4 left" in answer


def test_an_out_of_stock_variant_names_what_is_in_stock() -> None:
    answer = answer_product_question(JACKET, "blue in L?")
    assert "out of stock" in answer and "L, Red" in answer


def test_a_size_the_product_does_not_come_in_is_said_plainly() -> None:
    answer = answer_product_question(JACKET, "is it in stock in XL")
    assert "doesn't come in XL" in answer


def test_a_lowercase_m_in_a_word_is_not_a_size() -> None:
    answer = answer_product_question(JACKET, "I'm wondering if it's in stock")
    assert "in stock in: M, Blue; L, Red" in answer


def test_shoe_sizes_with_or_without_eu() -> None:
    assert "EU 42: 3 left" in answer_product_question(BOOTS, "do you have size 42")
    assert "out of stock" in answer_product_question(BOOTS, "EU 43 available?")


def test_price_and_specs_come_from_the_data() -> None:
    assert "€159.00" in answer_product_question(JACKET, "how much is it")
    assert "waterproof rating: 20,000 mm" in answer_product_question(JACKET, "how waterproof?")
    both = answer_product_question(JACKET, "what does it weigh and what does it cost")
    assert "380 g" in both and "€159.00" in both


def test_an_unspecific_question_gets_a_summary() -> None:
    answer = answer_product_question(JACKET, "tell me about it")
    assert "€159.00" in answer and "A light waterproof shell." in answer

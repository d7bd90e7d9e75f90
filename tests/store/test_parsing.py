"""Reading shoppers' free text: order numbers, emails, addresses, which item."""

from __future__ import annotations

import pytest

from bot.store.models import OrderLine
from bot.store.parsing import find_email, find_order_id, match_line, parse_address


@pytest.mark.parametrize("text, expected", [
    ("SC-100482", "SC-100482"),
    ("it's #100482 thanks", "SC-100482"),
    ("sc100482", "SC-100482"),
    ('/track_order{"order_id":"SC-100482"}', "SC-100482"),
    ("call me on 0123", None),
    ("RMA-5001", None),
    ("no idea", None),
])
def test_order_numbers_are_found_in_what_shoppers_write(text: str, expected: str | None) -> None:
    assert find_order_id(text) == expected


def test_emails_are_found_in_a_sentence() -> None:
    assert find_email("sure, it's Anna.Berg+shop@example.com!") == "Anna.Berg+shop@example.com"
    assert find_email("anna at example dot com") is None


@pytest.mark.parametrize("text, postcode, city, country", [
    ("Anna Berg, Kanalstrasse 12, 20095 Hamburg, Germany", "20095", "Hamburg", "DE"),
    ("Jan de Vries, Prinsengracht 263, 1016 GV Amsterdam, NL", "1016 GV", "Amsterdam", "NL"),
    ("Ewa Nowak, ul. Prosta 5, 00-950 Warszawa, Poland", "00-950", "Warszawa", "PL"),
])
def test_addresses_in_common_eu_formats_parse(text: str, postcode: str, city: str,
                                              country: str) -> None:
    address = parse_address(text)
    assert (address.postcode, address.city, address.country) == (postcode, city, country)


def test_an_optional_second_line_is_kept() -> None:
    address = parse_address("Luc Peeters, Rue Neuve 1, Apt 3, 1000 Brussels, Belgium")
    assert address.line2 == "Apt 3" and address.one_line().startswith("Luc Peeters, Rue Neuve 1")


@pytest.mark.parametrize("text, hint", [
    ("somewhere nice", "separated by commas"),
    ("A, B, Hamburg, Germany", "postcode and city"),
    ("A, B, 12345 Town, Narnia", "didn't recognise the country"),
])
def test_bad_addresses_say_what_to_fix(text: str, hint: str) -> None:
    with pytest.raises(ValueError, match=hint):
        parse_address(text)


def _line(line_id: int, name: str, size: str | None = None, colour: str | None = None) -> OrderLine:
    return OrderLine(line_id=line_id, product_sku="P", variant_sku=f"V{line_id}", name=name,
                     category="Clothing", size=size, colour=colour, qty=1, price=10)


def test_the_item_is_matched_by_number_or_by_name_words() -> None:
    lines = [_line(1, "Stormline rain jacket", "M", "Blue"), _line(2, "Peak gas canister")]
    assert match_line("2", lines) == lines[1]
    assert match_line("the rain jackets", lines) == lines[0]
    assert match_line("the blue one", lines) == lines[0]
    assert match_line("socks", lines) is None


def test_two_equally_likely_items_are_not_guessed() -> None:
    lines = [_line(1, "Merino socks", colour="Grey"), _line(2, "Hiking socks", colour="Grey")]
    assert match_line("the grey socks", lines) is None

"""Reading shoppers' free text: order numbers, emails, addresses, which item."""

from __future__ import annotations

import pytest
from ruamel.yaml import YAML

from bot.settings import PROJECT_DIR
from bot.store.models import OrderLine
from bot.store.parsing import (
    email_in_message,
    find_email,
    find_order_id,
    match_line,
    normalise_email,
    parse_address,
)

DEMO_EMAILS = [str(c["email"]) for c in
               YAML(typ="safe").load(PROJECT_DIR / "data" / "shop" / "customers.yml")["customers"]]


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


@pytest.mark.parametrize("email", DEMO_EMAILS)
def test_every_demo_customers_email_is_found_whole(email: str) -> None:
    assert find_email(f"sure, it's {email}.") == email
    assert find_email(f"<{email.upper()}>") is not None


def test_unicode_local_parts_and_idn_domains_are_addresses() -> None:
    assert find_email("mail me: mateo.garcía@example.org!") == "mateo.garcía@example.org"
    assert find_email("x@bücher.de, thanks") == "x@bücher.de"
    assert find_email("o'brien@example.com") == "o'brien@example.com"
    assert find_email("a@b or me@localhost") is None


def test_addresses_compare_across_case_unicode_forms_and_idn_spellings() -> None:
    decomposed = "Mateo.Garci\u0301a@EXAMPLE.org"  # í as i + combining accent, capitals
    assert normalise_email(decomposed) == normalise_email("mateo.garcía@example.org")
    assert normalise_email("x@xn--bcher-kva.de") == normalise_email("X@Bücher.de")
    assert normalise_email("mateo.garcia@example.org") != normalise_email(
        "mateo.garcía@example.org")


def test_a_truncated_or_missing_email_entity_is_read_from_the_whole_message() -> None:
    text = "track SC-100482 for mateo.garcía@example.org please"
    # What an ASCII-only extractor makes of it, and no entity at all.
    assert email_in_message("a@example.org", text) == "mateo.garcía@example.org"
    assert email_in_message("mateo.garc", text) == "mateo.garcía@example.org"
    assert email_in_message(None, text) == "mateo.garcía@example.org"
    assert email_in_message("anna.berg@example.com", "anna.berg@example.com") == \
        "anna.berg@example.com"
    assert email_in_message(None, "no address here") is None


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

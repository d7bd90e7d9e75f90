"""Reading what shoppers type: order numbers, emails, addresses, which item they mean.

Pure functions; the order form's validation calls them on free text, so a
shopper can answer "it's #100482" or "the blue jacket" naturally.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from email_validator import EmailNotValidError, validate_email
from pydantic import ValidationError

from bot.store.models import Address, OrderLine, normalise_order_id

__all__ = [
    "email_in_message",
    "find_email",
    "find_order_id",
    "match_line",
    "normalise_email",
    "parse_address",
    "words",
]

_ORDER_IN_TEXT = re.compile(r"(?<![\w-])#?\s?((?:SC-?)?\d{5,12})(?![\w-])", re.IGNORECASE)
# Candidates only: anything around an "@" up to a space or a bracket/quote. Which of them
# is an address (Unicode local parts, IDN domains) is email-validator's call, not a regex's.
_EMAIL_CANDIDATE = re.compile(r"[^\s<>()\[\]{},;:\"@]+@[^\s<>()\[\]{},;:\"'@]+")
#: What a sentence may put right after an address ("…@example.org." "…@example.org!").
_TRAILING = ".!?…"
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset({"a", "an", "the", "my", "i", "me", "it", "is", "in", "of", "for", "to",
                   "and", "or", "with", "this", "that", "one"})

#: Country names shoppers write, to the ISO code the shop stores (EU delivery area).
COUNTRIES = {
    "austria": "AT", "belgium": "BE", "denmark": "DK", "finland": "FI", "france": "FR",
    "germany": "DE", "deutschland": "DE", "ireland": "IE", "italy": "IT",
    "luxembourg": "LU", "netherlands": "NL", "the netherlands": "NL", "holland": "NL",
    "poland": "PL", "portugal": "PT", "spain": "ES", "sweden": "SE", "czechia": "CZ",
    "czech republic": "CZ",
}
# NL "1016 GV", PL "00-950", SE/CZ "114 55", IE "D02 X285", LU "L-1234", most others digits.
_POSTCODE_CITY = re.compile(
    r"^(?P<postcode>\d{4}\s?[A-Z]{2}|\d{2}-\d{3}|\d{3}\s\d{2}|[A-Z]\d{2}\s?[A-Z0-9]{4}"
    r"|L-\d{4}|\d{4,5})\s+(?P<city>\D.*)$",
    re.IGNORECASE,
)


_EXPLICIT_ORDER = re.compile(r"(?<![\w-])(SC-?\d{5,12}|#\s?\d{5,12})(?![\w-])", re.IGNORECASE)


def find_order_id(text: str, explicit: bool = False) -> str | None:
    """The first order number in ``text``, in canonical form.

    ``explicit``: only numbers written as order numbers (``SC-100482``, ``#100482``),
    for text that answers another question (an address has postcodes).
    """
    pattern = _EXPLICIT_ORDER if explicit else _ORDER_IN_TEXT
    for match in pattern.finditer(text):
        order_id = normalise_order_id(match.group(1))
        if order_id is not None:
            return order_id
    return None


def _parse_email(candidate: str) -> str | None:
    try:
        # No DNS: a shopper's address is checked against the order, not the internet.
        return validate_email(candidate, check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def find_email(text: str) -> str | None:
    """The first email address in ``text`` (``mateo.garcía@example.org`` included).

    Returned as email-validator normalises it (Unicode NFC, the domain lower-case and
    in Unicode form); compare addresses with :func:`normalise_email`.
    """
    for match in _EMAIL_CANDIDATE.finditer(unicodedata.normalize("NFC", text)):
        found = _parse_email(match.group(0).lstrip("'").rstrip(_TRAILING))
        if found is not None:
            return found
    return None


def email_in_message(entity: str | None, text: str) -> str | None:
    """The address the shopper wrote: the NLU's ``entity``, or the whole message's own.

    The message wins when the entity is missing, not an address, or a piece of the
    address in the message: an ASCII-only extractor reads ``mateo.garcía@example.org``
    as ``a@example.org``, and that shopper could never prove an order.
    """
    in_text = find_email(text)
    given = find_email(entity) if entity else None
    if given is None:
        return in_text
    if in_text is not None and normalise_email(given) in normalise_email(in_text):
        return in_text
    return given


def normalise_email(address: str) -> str:
    """The form two addresses are compared in: NFC, case-folded, the domain as IDNA ASCII.

    ``Mateo.Garci\u0301a@EXAMPLE.org`` (a decomposed í, capitals) and
    ``mateo.garcía@example.org`` are the same shopper, and so are ``x@bücher.de`` and
    ``x@xn--bcher-kva.de``. Local parts are compared without case, as every mail
    provider a shop meets treats them. Text that is not an address is still
    normalised (NFC, case-folded), so it can only ever equal itself.
    """
    text = unicodedata.normalize("NFC", address.strip())
    try:
        parsed = validate_email(text, check_deliverability=False)
    except EmailNotValidError:
        return text.casefold()
    local = unicodedata.normalize("NFC", parsed.local_part.casefold())
    return f"{local}@{parsed.ascii_domain.lower()}"


def words(text: str) -> set[str]:
    """Lower-case content words, plural 's' dropped: what matching compares."""
    found = set()
    for word in _WORD.findall(text.lower()):
        if word in _STOP or (len(word) == 1 and not word.isdigit()):
            continue  # "women's" leaves an "s" that must not match a size
        found.add(word[:-1] if len(word) > 3 and word.endswith("s") else word)
    return found


def match_line(text: str, lines: Sequence[OrderLine]) -> OrderLine | None:
    """The order line the shopper means: its number (as the buttons send) or name words."""
    stripped = text.strip()
    if stripped.isdigit():
        return next((line for line in lines if line.line_id == int(stripped)), None)
    wanted = words(text)
    scored = []
    for line in lines:
        label = words(" ".join(filter(None, (line.name, line.size, line.colour))))
        score = len(wanted & label)
        if score:
            scored.append((score, line.line_id, line))
    scored.sort(key=lambda item: (-item[0], item[1]))
    if not scored or (len(scored) > 1 and scored[0][0] == scored[1][0]):
        return None  # nothing, or two items equally likely: ask again
    return scored[0][2]


def parse_address(text: str) -> Address:
    """``name, street, [line 2,] postcode city, country`` → :class:`Address`.

    Raises :class:`ValueError` with what to fix, in words a shopper understands.
    """
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if len(parts) < 4:
        raise ValueError("I need the name, street and number, postcode and city, and the "
                         "country, separated by commas.")
    name, line1, *middle, place, country_text = parts
    country = COUNTRIES.get(country_text.lower())
    if country is None and len(country_text) == 2 and country_text.isalpha():
        country = country_text.upper()
    if country is None or country not in set(COUNTRIES.values()):
        raise ValueError(f"We deliver within the EU; I didn't recognise the country "
                         f"\"{country_text}\". Write it out, e.g. Germany or Netherlands.")
    match = _POSTCODE_CITY.match(place)
    if match is None:
        raise ValueError(f"I couldn't find the postcode and city in \"{place}\"; write them "
                         "like \"20095 Hamburg\".")
    if len(middle) > 1:
        raise ValueError("That has too many parts; use at most one extra line after the street.")
    try:
        return Address(name=name, line1=line1, line2=middle[0] if middle else None,
                       city=match.group("city").strip(),
                       postcode=match.group("postcode").strip().upper(), country=country)
    except ValidationError as error:
        raise ValueError("Part of that address is too long; please shorten it.") from error

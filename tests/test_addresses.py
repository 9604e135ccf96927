"""Domain names and addresses: IDNA 2008 with the UTS #46 mapping, not Python's IDNA 2003 codec."""

import pytest

from iredapi_ldap import addresses, errors
from iredapi_ldap.errors import InvalidInput


@pytest.mark.parametrize("name,expected", [
    # IDNA 2003 maps ß to "ss": strasse.de is another (possibly someone else's) domain.
    ("straße.de", "xn--strae-oqa.de"),
    ("faß.de", "xn--fa-hia.de"),
    ("Straße.DE", "xn--strae-oqa.de"),  # UTS #46 folds case
    ("ＳＴＲＡＳＳＥ.de", "strasse.de"),  # and width: full-width Latin is plain ASCII
    ("bücher.example", "xn--bcher-kva.example"),
    ("пример.рф", "xn--e1afmkfd.xn--p1ai"),
    ("אב.com", "xn--4dbc.com"),  # a right-to-left label that satisfies the bidi rule
    ("xn--strae-oqa.de", "xn--strae-oqa.de"),  # A-labels that decode to valid labels stay
    ("XN--Strae-OQA.De", "xn--strae-oqa.de"),
    ("a.xn--p1ai", "a.xn--p1ai"),
    ("example.com", "example.com"),
])
def test_domain_names_are_idna_2008(name, expected):
    assert addresses.domain_name(name) == expected


@pytest.mark.parametrize("name", [
    "☃.com",  # symbols: IDNA 2003 allowed them, IDNA 2008 does not
    "😀.com",  # emoji
    "\u0301a.com",  # a label that starts with a combining mark
    "\u05d0a.com",  # bidi rule: a right-to-left label ending in a left-to-right letter
    "a\u05d0.com",  # bidi rule: a left-to-right label holding a right-to-left letter
    "e\u200dx.com",  # ZERO WIDTH JOINER outside the context RFC 5892 allows
    "xn--zz.com",  # not punycode of anything valid
    "xn--n3h.com",  # punycode of the snowman
    "xn--ls8h.com",  # punycode of an emoji
    "xn---bbk.com",  # a non-canonical spelling of xn--bbk (a "fake A-label")
    "xn--a.com",
    "bücher.xn--zz.de",  # a bad A-label beside a U-label
])
def test_names_idna_2008_refuses_are_invalid_domain_names(name):
    with pytest.raises(InvalidInput) as caught:
        addresses.domain_name(name)
    assert caught.value.code == errors.INVALID_DOMAIN_NAME


def test_the_domain_part_of_an_address_is_idna_2008():
    assert addresses.email("Fritz@Straße.de") == "fritz@xn--strae-oqa.de"
    assert addresses.email_list("a@faß.de, b@faß.de") == ["a@xn--fa-hia.de", "b@xn--fa-hia.de"]


@pytest.mark.parametrize("address", ["x@☃.com", "x@xn--zz.com", "x@\u0301a.com"])
def test_addresses_in_domains_idna_2008_refuses_are_invalid(address):
    with pytest.raises(InvalidInput) as caught:
        addresses.email(address)
    assert caught.value.code == errors.INVALID_MAIL

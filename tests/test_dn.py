"""DN and filter building: every value is escaped, so no input changes which entry a DN names
or what a filter matches (RFC 4514, RFC 4515)."""

import ldap.dn
import pytest

from iredapi_ldap.directory import dn as dnlib

NAMES = dnlib.DirectoryNames("o=domains,dc=example,dc=com", "o=domainAdmins,dc=example,dc=com")


@pytest.mark.parametrize("value", ["a,b", "#x", " x ", "x ", 'a+b"<>;=\\', "user@example.com", "ü@x", "a=b,o=evil"])
def test_an_rdn_value_comes_back_unchanged_from_the_dn(value):
    dn = f"mail={dnlib.escape_rdn_value(value)},ou=Users,o=domains"
    rdns = ldap.dn.str2dn(dn)
    assert len(rdns) == 3 and rdns[0][0][:2] == ("mail", value)


@pytest.mark.parametrize("value", ["", "a\x00b", "a\nb", "a\x7fb"])
def test_empty_values_and_control_characters_never_reach_a_dn(value):
    with pytest.raises(ValueError):
        dnlib.escape_rdn_value(value)


@pytest.mark.parametrize(("value", "escaped"), [
    ("*", r"\2a"), ("a)(mail=*", r"a\29\28mail=\2a"), ("\\", r"\5c"), ("a\x00b", r"a\00b"), ("x@y.z", "x@y.z"),
])
def test_filter_values_are_escaped(value, escaped):
    assert dnlib.eq("mail", value) == f"(mail={escaped})"


def test_account_dns_are_built_under_their_domain():
    base = "o=domains,dc=example,dc=com"
    assert NAMES.user("a+b@example.com") == rf"mail=a\+b@example.com,ou=Users,domainName=example.com,{base}"
    assert NAMES.list_externals("l@x.org") == f"memberOfGroup=l@x.org,ou=Externals,domainName=x.org,{base}"
    assert NAMES.admin("boss@x.org") == "mail=boss@x.org,o=domainAdmins,dc=example,dc=com"

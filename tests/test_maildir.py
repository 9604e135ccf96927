"""Maildir paths: iRedAdmin's hashed style, and the API's custom ``maildir``."""

import re
from datetime import UTC, datetime

import pytest

from iredapi_ldap.directory.maildir import check_custom_maildir, maildir_path
from iredapi_ldap.errors import InvalidInput

BASE = "/var/vmail/vmail1"
NOW = datetime(2026, 5, 14, 10, 20, 30, tzinfo=UTC)
STAMP = "2026.05.14.10.20.30"


@pytest.mark.parametrize(("mail", "hashed"), (
    ("alice@example.com", "a/l/i/alice"),
    ("al@example.com", "a/l/_/al"),
    ("a@example.com", "a/_/_/a"),
    ("a.b.c@example.com", "a/_/b/a.b.c"),
    (".ab@example.com", "_/a/b/.ab"),
    ("a~@example.com", "a/_/_/a~"),
    ("~.~x@example.com", "_/_/_/~.~x"),
    ("j.doe@example.com", "j/_/d/j.doe"),
    ("Alice@Example.COM", "a/l/i/alice"),
    ("a-b_c9@example.com", "a/-/b/a-b_c9"),
))
def test_hashed_path(mail, hashed):
    assert maildir_path(mail, BASE, now=NOW) == f"{BASE}/example.com/{hashed}-{STAMP}/"


@pytest.mark.parametrize("base", ("/var/vmail/vmail1/", "/var/vmail/vmail1//", "/var/vmail/vmail1"))
def test_base_directory_joins_without_double_slashes(base):
    assert maildir_path("bob@example.com", base, now=NOW) == f"/var/vmail/vmail1/example.com/b/o/b/bob-{STAMP}/"


def test_base_directory_root():
    assert maildir_path("bob@example.com", "/", now=NOW) == f"/example.com/b/o/b/bob-{STAMP}/"


def test_timestamp_defaults_to_now_in_utc():
    before = datetime.now(UTC).replace(microsecond=0)
    path = maildir_path("bob@example.com", BASE)
    after = datetime.now(UTC)
    match = re.fullmatch(rf"{BASE}/example\.com/b/o/b/bob-(\d{{4}}(?:\.\d\d){{5}})/", path)
    assert match
    stamped = datetime.strptime(match[1], "%Y.%m.%d.%H.%M.%S").replace(tzinfo=UTC)
    assert before <= stamped <= after


@pytest.mark.parametrize("mail", ("example.com", "@example.com", "bob@", "a/b@example.com", "bob@exa/mple.com"))
def test_not_an_address(mail):
    with pytest.raises(ValueError):
        maildir_path(mail, BASE, now=NOW)


@pytest.mark.parametrize(("given", "expected"), (
    ("/var/vmail/vmail1/example.com/bob/", "/var/vmail/vmail1/example.com/bob/"),
    ("/var/vmail/vmail1/example.com/bob", "/var/vmail/vmail1/example.com/bob/"),
    ("/srv/Mail/Example.COM/Bob/", "/srv/mail/example.com/bob/"),
    ("/srv//mail///bob", "/srv/mail/bob/"),
    ("/srv/mail/bob-2026.05.14.10.20.30/", "/srv/mail/bob-2026.05.14.10.20.30/"),
    ("/srv/mail/.hidden/", "/srv/mail/.hidden/"),
    ("/srv/mail/a..b/", "/srv/mail/a..b/"),
    ("/srv/my mail/bob/", "/srv/my mail/bob/"),
))
def test_custom_maildir_accepted(given, expected):
    assert check_custom_maildir(given) == expected


@pytest.mark.parametrize("given", (
    "",
    "/",
    "//",
    "var/vmail/bob/",
    "./bob/",
    "/var/vmail/../etc/",
    "/var/vmail/..",
    "/var/./vmail/bob/",
    "/var/vmail/bob\n",
    "/var/vmail/b\tob/",
    "/var/vmail/b\x00ob/",
    "/var/vmail/b\x7fob/",
    "/var/vmail/böb/",
    None,
    b"/var/vmail/bob/",
))
def test_custom_maildir_rejected(given):
    with pytest.raises(InvalidInput) as caught:
        check_custom_maildir(given)
    assert caught.value.code == "INVALID_PARAMETER"
    assert caught.value.param == "maildir"

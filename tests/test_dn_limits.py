"""Names as long as slapd can hold, and one byte longer.

slapd's back-mdb refuses an entry whose RDN is over 245 bytes with result 80 ("other"), which
used to come back as a 500 after the request had begun writing.  Valid names reach that length
(a 240-character domain; a 64-character local part on a long domain), so the DN builder refuses
them first: 400 with the code of the name, and nothing written.
"""

import uuid

import pytest

from iredapi_ldap.directory.dn import MAX_RDN_BYTES
from tests.conftest import count_entries, domain_dn, failed

SUFFIX_LEN = len(".test")


def exact_domain(length):
    """A fresh, valid domain name of exactly ``length`` characters (labels of at most 50)."""
    body = uuid.uuid4().hex[:8] + "c" * length
    labels, left = [], length - SUFFIX_LEN
    while left > 0:
        take = min(50, left)
        if left - take == 1:  # a label after it would be empty
            take -= 2
        labels.append(body[:take])
        body = body[take:]
        left -= take + 1
    name = ".".join(labels) + ".test"
    assert len(name) == length, (len(name), length)
    return name


LONGEST_DOMAIN = MAX_RDN_BYTES - len("domainName=")


def test_the_longest_domain_slapd_holds_is_created(api):
    domain = exact_domain(LONGEST_DOMAIN)
    assert api.post(f"/api/domain/{domain}", {"name": "long"}).status_code == 201
    assert api.get(f"/api/domain/{domain}").status_code == 200


def test_one_character_more_is_refused_and_nothing_written(api, root_connection):
    domain = exact_domain(LONGEST_DOMAIN + 1)
    result = api.post(f"/api/domain/{domain}", {"name": "long"})
    assert result.status_code == 400
    assert result.json == failed("INVALID_DOMAIN_NAME", detail=result.json["detail"])
    assert "too long for the directory" in result.json["detail"]
    assert count_entries(root_connection, domain_dn(domain).split(",", 1)[1],
                         f"(domainName={domain})") == 0


@pytest.fixture
def long_domain(api):
    """A domain long enough that a full-length local part makes an address slapd cannot hold."""
    domain = exact_domain(200)
    assert api.post(f"/api/domain/{domain}", {"name": "long"}).status_code == 201
    return domain


@pytest.mark.parametrize("kind", ["user", "alias", "maillist"])
def test_an_account_address_slapd_cannot_hold_is_refused(api, root_connection, long_domain, kind):
    longest = "u" * (MAX_RDN_BYTES - len("mail=@") - len(long_domain))
    form = {"name": "x", "password": "Long-Address-Pw-1"} if kind == "user" else {"name": "x"}
    assert api.post(f"/api/{kind}/{longest}@{long_domain}", form).status_code == 201
    result = api.post(f"/api/{kind}/{longest}x@{long_domain}", form)
    assert result.status_code == 400
    assert result.json == failed("INVALID_MAIL", detail=result.json["detail"])
    assert count_entries(root_connection, domain_dn(long_domain), f"(mail={longest}x@{long_domain})") == 0


def test_a_list_too_long_for_its_external_members_entry(api, root_connection, long_domain):
    """External members live in an entry named memberOfGroup=<list>: a list whose address fits
    in its own RDN but not in that one gets a 400 for the external member, not a 500."""
    local = "l" * (MAX_RDN_BYTES - len("memberOfGroup=@") - len(long_domain) + 1)
    mail = f"{local}@{long_domain}"
    assert api.post(f"/api/maillist/{mail}", {"name": "x"}).status_code == 201
    result = api.put(f"/api/maillist/{mail}", {"addMember": "someone@elsewhere.example"})
    assert result.status_code == 400, result.text
    assert result.json["_msg"] == "INVALID_MAIL"
    assert count_entries(root_connection, domain_dn(long_domain), "(objectClass=mailExternalUser)") == 0


@pytest.mark.parametrize("kind", ["user", "alias", "maillist"])
def test_a_rename_to_a_name_too_long_for_slapd_is_refused_naming_new_mail(api, root_connection, kind):
    """A 64-character local part on a 200-character domain: valid, but not storable; 400 naming
    the parameter, nothing changed."""
    domain = exact_domain(200)
    assert api.post(f"/api/domain/{domain}").status_code == 201
    data = {"password": "Secret-pw1!"} if kind == "user" else {}
    assert api.post(f"/api/{kind}/a@{domain}", data).status_code == 201
    result = api.post(f"/api/{kind}/a@{domain}/change_email/{'b' * 64}@{domain}")
    assert result.status_code == 400 and result.json["msg"] == "INVALID_MAIL", result.text
    assert result.json.get("param") == "new_mail"
    assert count_entries(root_connection, domain_dn(domain), f"(mail=a@{domain})") == 1

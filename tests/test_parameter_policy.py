"""Parameters as iRedAdmin-Pro's clients send them: unknown ones ignored but named (or refused with
STRICT_PARAMETERS), Pro's and LDAP's synonyms, documented parameters on every method."""

import logging

import pytest

from tests.conftest import SUFFIX, ApiClient, domain_dn, read_entry

PASSWORD = "Secret-pw1!"


def user_dn(mail):
    return f"mail={mail},ou=Users,domainName={mail.split('@')[1]},o=domains,{SUFFIX}"


def test_unknown_parameters_are_ignored_named_and_logged(api, root_connection, new_domain, caplog):
    domain = new_domain()
    # one client sends senderBcc/recipientBcc when creating a domain (not taken here yet)
    with caplog.at_level(logging.WARNING):
        result = api.post(f"/api/domain/{domain}", {"cn": "Co", "senderBcc": "a@b.test", "recipientBcc": ""})
    assert result.status_code == 201
    assert result.headers["X-Ignored-Parameters"] == "senderBcc, recipientBcc"
    assert f"POST /api/domain/{domain}: ignored parameters it does not take: senderBcc, recipientBcc" in caplog.text
    entry = read_entry(root_connection, domain_dn(domain))
    assert entry["cn"] == ["Co"] and "domainSenderBccAddress" not in entry
    # nothing ignored, no header
    assert "X-Ignored-Parameters" not in api.put(f"/api/domain/{domain}", {"cn": "Co2"}).headers


def test_strict_parameters_refuses_them_and_changes_nothing(make_app, root_connection, new_domain):
    client = ApiClient(make_app(STRICT_PARAMETERS=True)).login()
    domain = new_domain()
    assert client.post(f"/api/domain/{domain}", {"cn": "kept"}).status_code == 201
    before = read_entry(root_connection, domain_dn(domain))
    # (PUT takes senderBcc since issue 13; POST still does not, see above)
    result = client.put(f"/api/domain/{domain}", {"cn": "changed", "senderBccs": "a@b.test"})
    assert result.status_code == 400 and result.json["msg"] == "UNKNOWN_PARAMETER"
    assert result.json["param"] == "senderBccs" and "X-Ignored-Parameters" not in result.headers
    assert read_entry(root_connection, domain_dn(domain)) == before


@pytest.mark.parametrize("strict", [False, True])
def test_invalid_values_of_known_parameters_stay_400_in_both_modes(make_app, root_connection, new_domain, strict):
    client = ApiClient(make_app(STRICT_PARAMETERS=strict)).login()
    domain = new_domain()
    client.post(f"/api/domain/{domain}")
    before = read_entry(root_connection, domain_dn(domain))
    result = client.put(f"/api/domain/{domain}", {"numberOfUsers": "many", "whatever": "1"})
    assert result.status_code == 400
    assert result.json["param"] == "numberOfUsers"  # the first bad one, in the order sent
    assert read_entry(root_connection, domain_dn(domain)) == before


def test_synonyms_of_pro_and_ldap_names(api, root_connection, new_domain):
    domain = new_domain()
    api.post(f"/api/domain/{domain}")
    mail = f"syn@{domain}"
    # as an identity operator sends it: LDAP-style givenName beside name, on create and update
    created = api.post(f"/api/user/{mail}", {"password": PASSWORD, "name": "Syn Onym", "givenName": "Syn",
                                             "surname": "Onym", "employeeNumber": "E1", "quota": "5"})
    assert created.status_code == 201 and "X-Ignored-Parameters" not in created.headers
    entry = read_entry(root_connection, user_dn(mail))
    assert entry["cn"] == ["Syn Onym"] and entry["givenName"] == ["Syn"] and entry["sn"] == ["Onym"]
    assert entry["employeeNumber"] == ["E1"] and entry["mailQuota"] == [str(5 * 1024 * 1024)]
    updated = api.put(f"/api/user/{mail}", {"name": "New", "givenName": "N", "mailQuota": "6",
                                            "preferredLanguage": "de_DE"})
    assert updated.status_code == 200
    entry = read_entry(root_connection, user_dn(mail))
    assert entry["cn"] == ["New"] and entry["givenName"] == ["N"] and entry["preferredLanguage"] == ["de_DE"]
    # two spellings of one parameter in one request are a contradiction
    both = api.put(f"/api/user/{mail}", {"gn": "A", "givenName": "B"})
    assert both.status_code == 400 and both.json["msg"] == "CONFLICTING_PARAMETERS"


def test_documented_parameters_are_taken_on_create_too(api, root_connection, new_domain):
    domain = new_domain()
    api.post(f"/api/domain/{domain}")
    mail = f"made@{domain}"
    result = api.post(f"/api/user/{mail}", {"password": PASSWORD, "accountStatus": "disabled", "gn": "Made",
                                            "sn": "Here", "telephoneNumber": "+1 555 0100,+1 555 0101",
                                            "mobile": "+1 555 0199"})
    assert result.status_code == 201 and "X-Ignored-Parameters" not in result.headers
    entry = read_entry(root_connection, user_dn(mail))
    assert entry["accountStatus"] == ["disabled"] and entry["givenName"] == ["Made"] and entry["sn"] == ["Here"]
    assert entry["telephoneNumber"] == ["+1 555 0100", "+1 555 0101"] and entry["mobile"] == ["+1 555 0199"]


def test_credentials_in_the_query_string_stay_refused(anonymous):
    result = anonymous.request("POST", "/iredadmin/api/login", params={"username": "root@example.com",
                                                                       "password": "Admin-Secret-1!"})
    assert result.status_code == 400 and result.json["param"] == "password"
    assert "Set-Cookie" not in result.headers

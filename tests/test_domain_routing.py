"""Domain PUT's mail-routing parameters (issue 13) against the real test slapd: alias domains,
catch-all, BCC, relay host, backup MX, domain services, profile switches; user PUT's BCC and
relay; who may change what.  tests/test_domain_routing_postfix.py proves them with Postfix."""

import ldap3
import pytest

from tests.conftest import ApiClient, alias_dn, count_entries, domain_dn, failed, list_dn, read_entry, user_dn
from tests.test_access import add_standalone_admin

PASSWORD = "Secret-pw1!"


@pytest.fixture
def domain(api, new_domain):
    name = new_domain()
    assert api.post(f"/api/domain/{name}").status_code == 201
    for user in ("alice", "bob"):
        assert api.post(f"/api/user/{user}@{name}", {"password": PASSWORD}).status_code == 201
    assert api.post(f"/api/alias/info@{name}", {"members": f"alice@{name}"}).status_code == 201
    assert api.post(f"/api/maillist/team@{name}", {"members": f"bob@{name}"}).status_code == 201
    return name


def shadow(conn, dn):
    return sorted((read_entry(conn, dn) or {}).get("shadowAddress", []))


def domain_entry(conn, domain):
    return read_entry(conn, domain_dn(domain))


# -- alias domains --------------------------------------------------------------------------------


def test_add_alias_domain_gives_every_account_its_address_there(api, root_connection, domain, new_domain):
    alias = new_domain()
    result = api.put(f"/api/domain/{domain}", {"addAliasDomain": alias})
    assert result.status_code == 200, result.text
    assert result.json["_data"] == {"accounts_changed": 4, "addresses_not_added": []}
    entry = domain_entry(root_connection, domain)
    assert entry["domainAliasName"] == [alias]
    assert "domainalias" in entry["enabledService"]
    assert shadow(root_connection, user_dn(f"alice@{domain}")) == [f"alice@{alias}"]
    assert shadow(root_connection, user_dn(f"bob@{domain}")) == [f"bob@{alias}"]
    assert shadow(root_connection, alias_dn(f"info@{domain}")) == [f"info@{alias}"]
    assert shadow(root_connection, list_dn(f"team@{domain}")) == [f"team@{alias}"]
    # a repeat finds nothing left to do and duplicates nothing
    again = api.put(f"/api/domain/{domain}", {"addAliasDomain": alias})
    assert again.json["_data"] == {"accounts_changed": 0, "addresses_not_added": []}
    assert shadow(root_connection, user_dn(f"alice@{domain}")) == [f"alice@{alias}"]
    # GET shows it readably
    data = api.get(f"/api/domain/{domain}").json["_data"]
    assert data["aliasDomains"] == [alias]
    assert "domainalias" in data["services"]


def test_accounts_created_later_get_the_address_and_removal_takes_all_away(api, root_connection, domain,
                                                                            new_domain):
    alias, second = new_domain(), new_domain()
    api.put(f"/api/domain/{domain}", {"aliasDomains": f"{alias},{second}"})
    assert api.post(f"/api/user/carol@{domain}", {"password": PASSWORD}).status_code == 201
    assert api.post(f"/api/alias/sales@{domain}").status_code == 201
    assert api.post(f"/api/maillist/staff@{domain}").status_code == 201
    assert shadow(root_connection, user_dn(f"carol@{domain}")) == sorted([f"carol@{alias}", f"carol@{second}"])
    assert shadow(root_connection, alias_dn(f"sales@{domain}")) == sorted([f"sales@{alias}", f"sales@{second}"])
    assert shadow(root_connection, list_dn(f"staff@{domain}")) == sorted([f"staff@{alias}", f"staff@{second}"])
    # a per-user alias address in the alias domain goes with it too
    assert api.put(f"/api/user/carol@{domain}", {"addAlias": f"boss@{alias}"}).status_code == 200

    result = api.put(f"/api/domain/{domain}", {"removeAliasDomain": alias})
    assert result.status_code == 200, result.text
    assert result.json["_data"]["accounts_changed"] == 7
    assert shadow(root_connection, user_dn(f"carol@{domain}")) == [f"carol@{second}"]
    assert shadow(root_connection, list_dn(f"staff@{domain}")) == [f"staff@{second}"]
    assert domain_entry(root_connection, domain)["domainAliasName"] == [second]
    api.put(f"/api/domain/{domain}", {"aliasDomains": ""})
    entry = domain_entry(root_connection, domain)
    assert "domainAliasName" not in entry and "domainalias" not in entry["enabledService"]
    assert count_entries(root_connection, domain_dn(domain), "(shadowAddress=*)") == 0


def test_a_crashed_add_is_finished_by_a_repeat(api, make_app, root_connection, domain, new_domain, monkeypatch):
    from iredapi_ldap.directory import alias_domains

    alias = new_domain()
    real = alias_domains._apply
    calls = []

    def crash_after_two(directory, dn, add, remove):
        if len(calls) == 2:
            raise RuntimeError("worker died")
        calls.append(dn)
        return real(directory, dn, add, remove)

    monkeypatch.setattr(alias_domains, "_apply", crash_after_two)
    client = ApiClient(make_app()).login()
    assert client.put(f"/api/domain/{domain}", {"addAliasDomain": alias}).status_code == 500
    assert count_entries(root_connection, domain_dn(domain), f"(shadowAddress=*@{alias})") == 2
    monkeypatch.setattr(alias_domains, "_apply", real)
    result = api.put(f"/api/domain/{domain}", {"addAliasDomain": alias})
    assert result.json["_data"] == {"accounts_changed": 2, "addresses_not_added": []}
    assert count_entries(root_connection, domain_dn(domain), f"(shadowAddress=*@{alias})") == 4
    for dn in (user_dn(f"alice@{domain}"), user_dn(f"bob@{domain}"), alias_dn(f"info@{domain}"),
               list_dn(f"team@{domain}")):
        assert len(shadow(root_connection, dn)) == 1


def test_an_address_another_account_holds_stays_with_it_and_is_reported(api, root_connection, domain, new_domain):
    alias = new_domain()
    api.put(f"/api/domain/{domain}", {"addAliasDomain": alias})
    # bob takes info@<alias> as his own alias address; the alias info@ loses it...
    api.put(f"/api/domain/{domain}", {"removeAliasDomain": alias})
    root_connection.modify(user_dn(f"bob@{domain}"), {"shadowAddress": [(ldap3.MODIFY_ADD, [f"info@{alias}"])]})
    result = api.put(f"/api/domain/{domain}", {"addAliasDomain": alias})
    assert result.status_code == 200, result.text
    assert result.json["_data"] == {"accounts_changed": 3, "addresses_not_added": [f"info@{alias}"]}
    assert shadow(root_connection, user_dn(f"bob@{domain}")) == sorted([f"bob@{alias}", f"info@{alias}"])
    assert shadow(root_connection, alias_dn(f"info@{domain}")) == []


def test_a_name_is_a_domain_or_an_alias_domain_once(api, root_connection, domain, new_domain):
    other, alias = new_domain(), new_domain()
    assert api.post(f"/api/domain/{other}").status_code == 201
    before = domain_entry(root_connection, domain)
    for params, param in (({"addAliasDomain": other}, "addAliasDomain"), ({"aliasDomains": other}, "aliasDomains")):
        result = api.put(f"/api/domain/{domain}", params)
        assert result.status_code == 409, result.text
        assert result.json["msg"] == "ALREADY_EXISTS" and result.json["param"] == param
    api.put(f"/api/domain/{other}", {"addAliasDomain": alias})
    result = api.put(f"/api/domain/{domain}", {"addAliasDomain": alias, "cn": "changed"})
    assert result.status_code == 409 and result.json["param"] == "addAliasDomain"
    assert domain_entry(root_connection, domain) == before
    assert shadow(root_connection, user_dn(f"alice@{domain}")) == []
    # nor may a new domain take an alias domain's name
    result = api.post(f"/api/domain/{alias}")
    assert result.status_code == 409 and result.json["msg"] == "ALREADY_EXISTS"
    assert domain_entry(root_connection, alias) is None
    # nor is a domain its own alias domain, nor can its own name be removed as one (which would
    # sweep its accounts' own alias addresses in it away)
    api.put(f"/api/user/alice@{domain}", {"addAlias": f"sales@{domain}"})
    for param in ("addAliasDomain", "aliasDomains", "removeAliasDomain"):
        result = api.put(f"/api/domain/{domain}", {param: domain})
        assert result.status_code == 400 and result.json["param"] == param
    assert shadow(root_connection, user_dn(f"alice@{domain}")) == [f"sales@{domain}"]


@pytest.mark.parametrize("params, param, code", [
    ({"addAliasDomain": "not a domain"}, "addAliasDomain", "INVALID_DOMAIN_NAME"),
    ({"aliasDomains": "x.test", "addAliasDomain": "y.test"}, "addAliasDomain", "CONFLICTING_PARAMETERS"),
    ({"addAliasDomain": "x.test", "removeAliasDomain": "x.test"}, "removeAliasDomain", "CONFLICTING_PARAMETERS"),
    ({"catchall": "nobody"}, "catchall", "INVALID_MAIL"),
    ({"senderBcc": "not-an-address"}, "senderBcc", "INVALID_MAIL"),
    ({"recipientBcc": "a@b.test,c@d.test"}, "recipientBcc", "INVALID_MAIL"),
    ({"outboundRelay": "smtp:[192.0.2.2]:99999"}, "outboundRelay", "INVALID_PARAMETER"),
    ({"outboundRelay": "relay host"}, "outboundRelay", "INVALID_PARAMETER"),
    ({"outboundRelay": "[relay.test]:587;x"}, "outboundRelay", "INVALID_PARAMETER"),
    ({"outboundRelay": "smtp:[ipv6:1:2]:25"}, "outboundRelay", "INVALID_PARAMETER"),  # no IPv6 address
    ({"outboundRelay": "[ipv6:::::::]"}, "outboundRelay", "INVALID_PARAMETER"),
    ({"is_backupmx": "yes", "primarymx": "[ipv6:2001:db8::g]"}, "primarymx", "INVALID_PARAMETER"),
    ({"outboundRelay": "[2001:db8::1:]:25"}, "outboundRelay", "INVALID_PARAMETER"),
    ({"outboundRelay": "smtp:[999.1.1.1]:25"}, "outboundRelay", "INVALID_PARAMETER"),  # nor name nor address
    ({"is_backupmx": "yes", "primarymx": "300.1.1.1"}, "primarymx", "INVALID_PARAMETER"),
    ({"is_backupmx": "maybe"}, "is_backupmx", "INVALID_PARAMETER"),
    ({"primarymx": "mx one.test"}, "primarymx", "INVALID_PARAMETER"),
    ({"primarymx": "mx.test"}, "primarymx", "INVALID_PARAMETER"),  # not a backup MX
    ({"is_backupmx": "no", "primarymx": "mx.test"}, "primarymx", "CONFLICTING_PARAMETERS"),
    ({"is_backupmx": "yes", "transport": "dovecot"}, "is_backupmx", "CONFLICTING_PARAMETERS"),
    ({"primarymx": "mx.test", "transport": "dovecot"}, "primarymx", "CONFLICTING_PARAMETERS"),
    ({"addService": "imap"}, "addService", "INVALID_SERVICE"),
    ({"services": "mail,bogus"}, "services", "INVALID_SERVICE"),
    ({"services": "mail", "removeService": "mail"}, "removeService", "CONFLICTING_PARAMETERS"),
    ({"disableDomainProfile": "bcc,nonsense"}, "disableDomainProfile", "INVALID_PARAMETER"),
    ({"disableUserProfile": "catchall"}, "disableUserProfile", "INVALID_PARAMETER"),
    ({"enableUserPreference": "throttle"}, "enableUserPreference", "INVALID_PARAMETER"),
    ({"disableDomainProfile": "bcc", "enableDomainProfile": "bcc"}, "enableDomainProfile",
     "CONFLICTING_PARAMETERS"),
    ({"senderBcc": "a@b.test", "removeService": "senderbcc"}, "removeService", "CONFLICTING_PARAMETERS"),
])
def test_bad_values_are_400_naming_the_parameter_and_change_nothing(api, root_connection, domain, params, param,
                                                                    code):
    before = domain_entry(root_connection, domain)
    result = api.put(f"/api/domain/{domain}", {**params, "cn": "changed"})
    assert result.status_code == 400, result.text
    assert result.json["msg"] == code and result.json["param"] == param
    assert domain_entry(root_connection, domain) == before
    assert read_entry(root_connection, user_dn(f"@{domain}")) is None


# -- catch-all -------------------------------------------------------------------------------------


def test_catchall_is_an_account_listings_and_counters_leave_out(api, root_connection, domain, new_domain):
    alias = new_domain()
    api.put(f"/api/domain/{domain}", {"addAliasDomain": alias})
    result = api.put(f"/api/domain/{domain}", {"catchall": f"alice@{domain}, archive@elsewhere.test"})
    assert result.status_code == 200, result.text
    entry = read_entry(root_connection, user_dn(f"@{domain}"))
    assert sorted(entry["objectClass"]) == ["inetOrgPerson", "mailUser"]
    assert entry["mail"] == [f"@{domain}"]
    assert entry["uid"] == entry["cn"] == entry["sn"] == ["catch-all"]
    assert entry["accountStatus"] == ["active"]
    assert sorted(entry["mailForwardingAddress"]) == sorted([f"alice@{domain}", "archive@elsewhere.test"])
    assert entry["shadowAddress"] == [f"@{alias}"]  # catchall_maps is asked for @<alias domain> too
    data = api.get(f"/api/domain/{domain}").json["_data"]
    assert data["catchall"] == sorted([f"alice@{domain}", "archive@elsewhere.test"])
    assert data["domainCurrentUserNumber"] == ["2"]
    users = api.get(f"/api/users/{domain}", params={"email_only": "yes"}).json["_data"]
    assert sorted(users) == sorted([f"alice@{domain}", f"bob@{domain}"])
    # changed in place, then removed
    api.put(f"/api/domain/{domain}", {"catchall": f"bob@{domain}"})
    assert read_entry(root_connection, user_dn(f"@{domain}"))["mailForwardingAddress"] == [f"bob@{domain}"]
    api.put(f"/api/domain/{domain}", {"catchall": ""})
    assert read_entry(root_connection, user_dn(f"@{domain}")) is None
    assert api.get(f"/api/domain/{domain}").json["_data"]["catchall"] == []


def test_catchall_of_a_disabled_domain_is_disabled(api, root_connection, domain):
    api.put(f"/api/domain/{domain}", {"accountStatus": "disabled"})
    api.put(f"/api/domain/{domain}", {"catchall": f"alice@{domain}"})
    assert read_entry(root_connection, user_dn(f"@{domain}"))["domainStatus"] == ["disabled"]
    api.put(f"/api/domain/{domain}", {"accountStatus": "active"})
    assert "domainStatus" not in read_entry(root_connection, user_dn(f"@{domain}"))


# -- BCC, relay, backup MX, services, profile switches -------------------------------------------------


def test_bcc_and_relay_with_their_services(api, root_connection, domain):
    result = api.put(f"/api/domain/{domain}", {"senderBcc": "Out@Archive.test", "recipientBcc": "in@archive.test",
                                              "outboundRelay": "smtp:[192.0.2.2]:25"})
    assert result.status_code == 200, result.text
    entry = domain_entry(root_connection, domain)
    assert entry["domainSenderBccAddress"] == ["out@archive.test"]
    assert entry["domainRecipientBccAddress"] == ["in@archive.test"]
    assert entry["senderRelayHost"] == ["smtp:[192.0.2.2]:25"]
    assert sorted(entry["enabledService"]) == ["mail", "recipientbcc", "senderbcc"]
    data = api.get(f"/api/domain/{domain}").json["_data"]
    assert (data["senderBcc"], data["recipientBcc"], data["outboundRelay"]) == (
        "out@archive.test", "in@archive.test", "smtp:[192.0.2.2]:25")
    api.put(f"/api/domain/{domain}", {"outboundRelay": "[relay.example.com]:587"})
    assert domain_entry(root_connection, domain)["senderRelayHost"] == ["[relay.example.com]:587"]
    # smtp(8)'s IPv6 form, and the bare [address] Postfix's host_port() takes too
    for relay in ("smtp:[IPv6:2001:db8::25]:587", "[ipv6:::ffff:192.0.2.2]", "[2001:db8::25]:25"):
        assert api.put(f"/api/domain/{domain}", {"outboundRelay": relay}).status_code == 200
        assert domain_entry(root_connection, domain)["senderRelayHost"] == [relay]
    api.put(f"/api/domain/{domain}", {"outboundRelay": "[relay.example.com]:587"})
    api.put(f"/api/domain/{domain}", {"senderBcc": "", "recipientBcc": "", "outboundRelay": ""})
    entry = domain_entry(root_connection, domain)
    for attribute in ("domainSenderBccAddress", "domainRecipientBccAddress", "senderRelayHost"):
        assert attribute not in entry
    assert entry["enabledService"] == ["mail"]


def test_user_bcc_and_relay(api, root_connection, domain):
    mail = f"alice@{domain}"
    api.put(f"/api/user/{mail}", {"removeService": "senderbcc"})
    result = api.put(f"/api/user/{mail}", {"senderBcc": "boss@archive.test", "recipientBcc": "in@archive.test",
                                          "outboundRelay": "[smtp.example.com]:587"})
    assert result.status_code == 200, result.text
    entry = read_entry(root_connection, user_dn(mail))
    assert entry["userSenderBccAddress"] == ["boss@archive.test"]
    assert entry["userRecipientBccAddress"] == ["in@archive.test"]
    assert entry["senderRelayHost"] == ["[smtp.example.com]:587"]
    assert "senderbcc" in entry["enabledService"] and "recipientbcc" in entry["enabledService"]
    api.put(f"/api/user/{mail}", {"senderBcc": "", "recipientBcc": "", "outboundRelay": ""})
    entry = read_entry(root_connection, user_dn(mail))
    for attribute in ("userSenderBccAddress", "userRecipientBccAddress", "senderRelayHost"):
        assert attribute not in entry
    for params, param in (({"senderBcc": "x"}, "senderBcc"), ({"outboundRelay": "smtp:[::1"}, "outboundRelay"),
                          # Postfix's user BCC lookups require the service: the address would be unused
                          ({"senderBcc": "a@archive.test", "removeService": "senderbcc"}, "removeService"),
                          ({"recipientBcc": "a@archive.test", "removeService": "RecipientBcc"}, "removeService")):
        result = api.put(f"/api/user/{mail}", params)
        assert result.status_code == 400 and result.json["param"] == param, result.text
    assert read_entry(root_connection, user_dn(mail)) == entry


def test_backup_mx(api, root_connection, domain):
    result = api.put(f"/api/domain/{domain}", {"is_backupmx": "yes", "primarymx": "mail.primary.test:25"})
    assert result.status_code == 200, result.text
    entry = domain_entry(root_connection, domain)
    assert entry["domainBackupMX"] == ["yes"]
    assert entry["mtaTransport"] == ["relay:[mail.primary.test]:25"]
    data = api.get(f"/api/domain/{domain}").json["_data"]
    assert (data["is_backupmx"], data["primarymx"]) == ("yes", "[mail.primary.test]:25")
    api.put(f"/api/domain/{domain}", {"primarymx": "[192.0.2.9]"})
    assert domain_entry(root_connection, domain)["mtaTransport"] == ["relay:[192.0.2.9]"]
    api.put(f"/api/domain/{domain}", {"primarymx": ""})  # DNS MX
    assert domain_entry(root_connection, domain)["mtaTransport"] == ["relay:"]
    api.put(f"/api/domain/{domain}", {"is_backupmx": "no"})
    entry = domain_entry(root_connection, domain)
    assert "domainBackupMX" not in entry and entry["mtaTransport"] == ["dovecot"]
    assert api.get(f"/api/domain/{domain}").json["_data"]["is_backupmx"] == "no"


def test_services(api, root_connection, domain):
    assert api.put(f"/api/domain/{domain}", {"addService": "self-service"}).status_code == 200
    assert sorted(domain_entry(root_connection, domain)["enabledService"]) == ["mail", "self-service"]
    api.put(f"/api/domain/{domain}", {"removeService": "mail"})
    assert domain_entry(root_connection, domain)["enabledService"] == ["self-service"]
    api.put(f"/api/domain/{domain}", {"services": "mail,Recipientbcc"})
    assert sorted(domain_entry(root_connection, domain)["enabledService"]) == ["mail", "recipientbcc"]


def test_profile_switches(api, root_connection, domain):
    result = api.put(f"/api/domain/{domain}", {"disableDomainProfile": "bcc,catchall", "disableUserProfile": "relay",
                                              "disableUserPreference": "wblist,quarantine", "numberOfUsers": "9"})
    assert result.status_code == 200, result.text
    assert sorted(domain_entry(root_connection, domain)["accountSetting"]) == sorted([
        "disabledDomainProfile:bcc", "disabledDomainProfile:catchall", "disabledUserProfile:relay",
        "disabledUserPreference:wblist", "disabledUserPreference:quarantine", "numberOfUsers:9"])
    api.put(f"/api/domain/{domain}", {"enableDomainProfile": "catchall,relay", "disableDomainProfile": "aliases",
                                      "enableUserPreference": "quarantine"})
    data = api.get(f"/api/domain/{domain}").json["_data"]
    assert data["disabledDomainProfile"] == ["aliases", "bcc"]
    assert data["disabledUserProfile"] == ["relay"]
    assert data["disabledUserPreference"] == ["wblist"]


# -- who may change what -------------------------------------------------------------------------------


@pytest.fixture
def domain_admin(make_app, root_connection, domain):
    admin = f"da@{domain}"
    add_standalone_admin(root_connection, admin, "Admin-Pw-9", domains=[domain])
    return ApiClient(make_app()).login(admin, "Admin-Pw-9")


def test_domain_admin_may_change_features_whose_tab_is_open(api, domain_admin, root_connection, domain, new_domain):
    alias = new_domain()
    for params in ({"senderBcc": f"alice@{domain}"}, {"outboundRelay": "[relay.test]:25"},
                   {"catchall": f"alice@{domain}"}, {"addAliasDomain": alias}):
        result = domain_admin.put(f"/api/domain/{domain}", params)
        assert result.status_code == 200, (params, result.text)
    assert domain_entry(root_connection, domain)["domainAliasName"] == [alias]
    assert domain_admin.put(f"/api/user/alice@{domain}", {"recipientBcc": "x@archive.test"}).status_code == 200


@pytest.mark.parametrize("params", [
    {"is_backupmx": "yes"}, {"transport": "relay:[x.test]"}, {"addService": "self-service"},
    {"services": "mail"}, {"removeService": "mail"}, {"enableDomainProfile": "bcc"}, {"disableUserProfile": "bcc"},
    {"enableUserPreference": "wblist"},
])
def test_domain_admin_cannot_change_global_features(domain_admin, root_connection, domain, params):
    before = domain_entry(root_connection, domain)
    result = domain_admin.put(f"/api/domain/{domain}", {"cn": "mine", **params})
    assert result.status_code == 403
    assert result.json == failed("PERMISSION_DENIED", param=next(iter(params)),
                                 detail="only global admins may change this")
    assert domain_entry(root_connection, domain) == before


@pytest.mark.parametrize("tab, params", [
    ("bcc", {"recipientBcc": "x@archive.test"}), ("relay", {"outboundRelay": "[relay.test]:25"}),
    ("catchall", {"catchall": "x@archive.test"}), ("aliases", {"aliasDomains": "alias-x.test"}),
    # what domain admins may change otherwise is withheld with its tab too
    ("password_policies", {"minPasswordLength": "4"}), ("password_policies", {"maxPasswordLength": "200"}),
])
def test_a_withheld_domain_tab_is_refused(api, domain_admin, root_connection, domain, tab, params):
    api.put(f"/api/domain/{domain}", {"disableDomainProfile": tab})
    before = domain_entry(root_connection, domain)
    result = domain_admin.put(f"/api/domain/{domain}", {"cn": "mine", **params})
    assert result.status_code == 403 and result.json["param"] == next(iter(params))
    assert result.json["msg"] == "PERMISSION_DENIED"
    assert domain_entry(root_connection, domain) == before
    assert read_entry(root_connection, user_dn(f"@{domain}")) is None
    assert api.put(f"/api/domain/{domain}", params).status_code == 200  # a global admin still may


@pytest.mark.parametrize("tab, params", [
    ("bcc", {"senderBcc": "x@archive.test"}), ("relay", {"outboundRelay": "[relay.test]:25"}),
    ("aliases", {"addAlias": "other@{domain}"}), ("forwarding", {"forwarding": "x@archive.test"}),
    ("relay", {"transport": "smtp:[relay.test]:25"}),  # Pro's relay tab: inbound relay too
])
def test_a_withheld_user_tab_is_refused(api, domain_admin, root_connection, domain, tab, params):
    params = {k: v.format(domain=domain) for k, v in params.items()}
    api.put(f"/api/domain/{domain}", {"disableUserProfile": tab})
    mail = f"alice@{domain}"
    before = read_entry(root_connection, user_dn(mail))
    result = domain_admin.put(f"/api/user/{mail}", {"cn": "Alice", **params})
    assert result.status_code == 403 and result.json["param"] == next(iter(params))
    assert read_entry(root_connection, user_dn(mail)) == before
    assert api.put(f"/api/user/{mail}", params).status_code == 200


def test_a_create_that_read_the_domain_before_an_alias_domain_came_settles(api, make_app, root_connection, domain,
                                                                            new_domain):
    # A create reads its domain, the alias domain is added and swept, then the create adds its
    # entry: it reads the domain again after the add and gives itself the address.
    from iredapi_ldap.directory import domains as domain_directory
    from iredapi_ldap.directory import limits as limitlib
    from iredapi_ldap.directory import users as user_directory

    alias, gone = new_domain(), new_domain()
    api.put(f"/api/domain/{domain}", {"addAliasDomain": gone})
    directory = make_app().services.directory
    stale = domain_directory.get_domain(directory, domain, limitlib.DOMAIN_ATTRIBUTES)
    api.put(f"/api/domain/{domain}", {"aliasDomains": alias})  # gone goes, alias comes
    user_directory.create_user(directory, f"late@{domain}", {"password": PASSWORD}, stale)
    assert shadow(root_connection, user_dn(f"late@{domain}")) == [f"late@{alias}"]


def test_a_name_another_domain_took_after_our_look_is_given_back(api, make_app, root_connection, domain, new_domain,
                                                                 monkeypatch):
    # Another request makes the name its domain's alias domain between our look and our write:
    # we look again after the write, find it, take ours back and answer 409; nothing changed.
    from iredapi_ldap.directory import alias_domains

    other, alias = new_domain(), new_domain()
    assert api.post(f"/api/domain/{other}").status_code == 201
    root_connection.modify(domain_dn(other), {"domainAliasName": [(ldap3.MODIFY_ADD, [alias])]})
    before = domain_entry(root_connection, domain)
    real, looks = alias_domains.domains_named, []

    def first_look_misses(*args, **kwargs):
        looks.append(args)
        return {} if len(looks) == 1 else real(*args, **kwargs)

    monkeypatch.setattr(alias_domains, "domains_named", first_look_misses)
    result = ApiClient(make_app()).login().put(f"/api/domain/{domain}", {"addAliasDomain": alias, "cn": "x"})
    assert result.status_code == 409, result.text
    assert result.json["msg"] == "ALREADY_EXISTS" and result.json["param"] == "addAliasDomain"
    assert len(looks) == 2
    assert domain_entry(root_connection, domain) == before
    assert count_entries(root_connection, domain_dn(domain), "(shadowAddress=*)") == 0


def test_a_users_aliases_reset_keeps_its_alias_domain_addresses(api, root_connection, domain, new_domain):
    alias = new_domain()
    api.put(f"/api/domain/{domain}", {"addAliasDomain": alias})
    mail = f"alice@{domain}"
    assert api.put(f"/api/user/{mail}", {"aliases": f"al@{domain}"}).status_code == 200
    assert shadow(root_connection, user_dn(mail)) == sorted([f"al@{domain}", f"alice@{alias}"])
    assert api.put(f"/api/user/{mail}", {"aliases": ""}).status_code == 200
    assert shadow(root_connection, user_dn(mail)) == [f"alice@{alias}"]
    # taken away explicitly, it goes (and the next sweep gives it back)
    api.put(f"/api/user/{mail}", {"removeAlias": f"alice@{alias}"})
    assert shadow(root_connection, user_dn(mail)) == []


def test_a_withheld_relay_tab_refuses_transport_on_create_and_bulk_update(api, domain_admin, root_connection,
                                                                           domain):
    api.put(f"/api/domain/{domain}", {"disableUserProfile": "relay"})
    result = domain_admin.post(f"/api/user/carol@{domain}", {"password": PASSWORD, "transport": "smtp:[x.test]"})
    assert result.status_code == 403 and result.json["param"] == "transport"
    assert read_entry(root_connection, user_dn(f"carol@{domain}")) is None
    # an empty transport sets none on a create: nothing withheld
    assert domain_admin.post(f"/api/user/carol@{domain}", {"password": PASSWORD, "transport": ""}).status_code == 201
    before = read_entry(root_connection, user_dn(f"alice@{domain}"))
    result = domain_admin.put(f"/api/users/{domain}", {"transport": "smtp:[x.test]"})
    assert result.status_code == 403 and result.json["param"] == "transport"
    assert read_entry(root_connection, user_dn(f"alice@{domain}")) == before
    assert domain_admin.put(f"/api/users/{domain}", {"preferredLanguage": "de_DE"}).status_code == 200


# -- a domain admin cannot claim a name whose addresses other domains use --------------------------


@pytest.mark.parametrize("claim", ["addAliasDomain", "aliasDomains"])
def test_domain_admin_cannot_claim_an_alias_domain_other_domains_use(api, domain_admin, root_connection, domain,
                                                                     new_domain, claim):
    # Another domain forwards to an outside address; were the name this domain's alias domain,
    # deleting a user made at that local part would take the address out of the other domain's
    # alias (deletes remove every reference to a deleted account's addresses).
    other, partner = new_domain(), new_domain()
    assert api.post(f"/api/domain/{other}").status_code == 201
    assert api.post(f"/api/alias/sales@{other}", {"members": f"bob@{partner}"}).status_code == 201
    before = domain_entry(root_connection, domain)
    result = domain_admin.put(f"/api/domain/{domain}", {claim: partner})
    assert result.status_code == 403, result.text
    assert result.json["msg"] == "PERMISSION_DENIED" and result.json["param"] == claim
    assert domain_entry(root_connection, domain) == before
    assert shadow(root_connection, user_dn(f"bob@{domain}")) == []
    # a global admin may (it sees the whole directory)
    assert api.put(f"/api/domain/{domain}", {claim: partner}).status_code == 200


def test_domain_admin_cannot_claim_a_standalone_admins_domain(api, domain_admin, root_connection, domain, new_domain):
    corp = new_domain()
    add_standalone_admin(root_connection, f"boss@{corp}", "Admin-Pw-9", domains=[domain])
    result = domain_admin.put(f"/api/domain/{domain}", {"addAliasDomain": corp})
    assert result.status_code == 403 and result.json["param"] == "addAliasDomain"
    assert "domainAliasName" not in domain_entry(root_connection, domain)


def test_domain_admin_may_claim_a_name_only_its_own_domain_uses(domain_admin, api, root_connection, domain,
                                                                new_domain):
    partner = new_domain()
    assert api.put(f"/api/user/alice@{domain}", {"forwarding": f"alice@{partner}"}).status_code == 200
    assert domain_admin.put(f"/api/domain/{domain}", {"addAliasDomain": partner}).status_code == 200


def test_a_limited_admin_cannot_create_a_domain_other_domains_use(api, root_connection, new_domain):
    from tests.test_admin_limits import make_admin

    other, partner = new_domain(), new_domain()
    assert api.post(f"/api/domain/{other}").status_code == 201
    assert api.post(f"/api/user/ann@{other}", {"password": PASSWORD}).status_code == 201
    assert api.put(f"/api/user/ann@{other}", {"forwarding": f"ann@{partner}"}).status_code == 200
    _, admin = make_admin(api, maxDomains="2")
    result = admin.post(f"/api/domain/{partner}")
    assert result.status_code == 403 and result.json["msg"] == "PERMISSION_DENIED", result.text
    assert read_entry(root_connection, domain_dn(partner)) is None
    assert admin.post(f"/api/domain/{new_domain()}").status_code == 201


# -- a reset that dies mid-sweep, and sweeps that race ---------------------------------------------


def _crash_after(monkeypatch, count):
    from iredapi_ldap.directory import alias_domains

    real, calls = alias_domains._apply, []

    def crashing(directory, dn, add, remove):
        if len(calls) == count:
            raise RuntimeError("worker died")
        calls.append(dn)
        return real(directory, dn, add, remove)

    monkeypatch.setattr(alias_domains, "_apply", crashing)
    return lambda: monkeypatch.setattr(alias_domains, "_apply", real)


@pytest.mark.parametrize("keep", [False, True])
def test_a_reset_that_died_mid_sweep_is_finished_by_a_repeat(api, make_app, root_connection, domain, new_domain,
                                                             monkeypatch, keep):
    gone, kept = new_domain(), new_domain()
    api.put(f"/api/domain/{domain}", {"aliasDomains": f"{gone},{kept}"})
    reset = {"aliasDomains": kept if keep else ""}
    restore = _crash_after(monkeypatch, 2)
    assert ApiClient(make_app()).login().put(f"/api/domain/{domain}", reset).status_code == 500
    restore()
    result = api.put(f"/api/domain/{domain}", reset)
    assert result.status_code == 200, result.text
    assert result.json["_data"]["accounts_changed"] == 2
    assert count_entries(root_connection, domain_dn(domain), f"(shadowAddress=*@{gone})") == 0
    assert count_entries(root_connection, domain_dn(domain), f"(shadowAddress=*@{kept})") == (4 if keep else 0)
    assert domain_entry(root_connection, domain).get("domainAliasName") == ([kept] if keep else None)


@pytest.mark.parametrize("first, second", [("addAliasDomain", "removeAliasDomain"),
                                           ("removeAliasDomain", "addAliasDomain")])
def test_an_add_and_a_remove_racing_leave_accounts_as_the_domain_says(api, make_app, root_connection, domain,
                                                                      new_domain, monkeypatch, first, second):
    # The second request runs whole while the first is half-way through its sweep.
    from iredapi_ldap.directory import alias_domains

    alias = new_domain()
    if first == "removeAliasDomain":
        api.put(f"/api/domain/{domain}", {"addAliasDomain": alias})
    real, calls = alias_domains._apply, []
    other = ApiClient(make_app()).login()

    def racing(directory, dn, add, remove):
        result = real(directory, dn, add, remove)
        calls.append(dn)
        if len(calls) == 1:
            monkeypatch.setattr(alias_domains, "_apply", real)
            assert other.put(f"/api/domain/{domain}", {second: alias}).status_code == 200
            monkeypatch.setattr(alias_domains, "_apply", racing)
        return result

    monkeypatch.setattr(alias_domains, "_apply", racing)
    assert api.put(f"/api/domain/{domain}", {first: alias}).status_code == 200
    monkeypatch.setattr(alias_domains, "_apply", real)
    has_alias = alias in domain_entry(root_connection, domain).get("domainAliasName", [])
    assert count_entries(root_connection, domain_dn(domain), f"(shadowAddress=*@{alias})") == (4 if has_alias else 0)


def test_domain_admin_naming_its_own_domain_as_alias_domain_gets_the_400(api, domain_admin, new_domain, domain):
    other = new_domain()
    assert api.post(f"/api/domain/{other}").status_code == 201
    assert api.post(f"/api/alias/sales@{other}", {"members": f"alice@{domain}"}).status_code == 201
    result = domain_admin.put(f"/api/domain/{domain}", {"addAliasDomain": domain})
    assert result.status_code == 400 and result.json["msg"] == "INVALID_DOMAIN_NAME", result.text


def test_a_reset_takes_the_addresses_of_a_name_added_meanwhile_along(api, make_app, root_connection, domain,
                                                                     new_domain, monkeypatch):
    # aliasDomains=<x> resets the list: a name another request added (and swept) after the reset
    # read the domain goes with the reset's write, and its addresses with it.
    from iredapi_ldap.directory import alias_domains

    kept, added = new_domain(), new_domain()
    real, calls = alias_domains._apply, []
    other = ApiClient(make_app()).login()

    def racing(directory, dn, add, remove):
        result = real(directory, dn, add, remove)
        calls.append(dn)
        if len(calls) == 1:
            monkeypatch.setattr(alias_domains, "_apply", real)
            assert other.put(f"/api/domain/{domain}", {"addAliasDomain": added}).status_code == 200
            monkeypatch.setattr(alias_domains, "_apply", racing)
        return result

    monkeypatch.setattr(alias_domains, "_apply", racing)
    assert api.put(f"/api/domain/{domain}", {"aliasDomains": kept}).status_code == 200
    monkeypatch.setattr(alias_domains, "_apply", real)
    assert domain_entry(root_connection, domain)["domainAliasName"] == [kept]
    assert count_entries(root_connection, domain_dn(domain), f"(shadowAddress=*@{added})") == 0
    assert count_entries(root_connection, domain_dn(domain), f"(shadowAddress=*@{kept})") == 4


@pytest.mark.parametrize("tab, params", [
    ("bcc", {"removeService": "senderbcc"}), ("bcc", {"removeService": "RecipientBcc"}),
    ("forwarding", {"removeService": "forward"}),
    ("bcc", {"services": "mail,deliver,forward,recipientbcc"}),  # a reset without senderbcc
])
def test_a_withheld_user_tab_covers_the_service_its_feature_needs(api, domain_admin, root_connection, domain, tab,
                                                                  params):
    # Postfix's user BCC lookups need enabledService=senderbcc/recipientbcc, a user's forwarding
    # enabledService=forward: switching the service off would stop what a global admin set.
    mail = f"alice@{domain}"
    api.put(f"/api/user/{mail}", {"senderBcc": "legal@archive.test", "forwarding": "x@archive.test"})
    api.put(f"/api/domain/{domain}", {"disableUserProfile": tab})
    before = read_entry(root_connection, user_dn(mail))
    result = domain_admin.put(f"/api/user/{mail}", params)
    assert result.status_code == 403 and result.json["param"] == next(iter(params)), result.text
    assert read_entry(root_connection, user_dn(mail)) == before
    # other services stay the domain admin's, and so do these with the tab open
    assert domain_admin.put(f"/api/user/{mail}", {"removeService": "pop3"}).status_code == 200
    api.put(f"/api/domain/{domain}", {"enableUserProfile": tab})
    assert domain_admin.put(f"/api/user/{mail}", params).status_code == 200


@pytest.mark.parametrize("param, value", [("senderBcc", "copy@archive.test"), ("recipientBcc", "copy@archive.test"),
                                          ("outboundRelay", "[relay.archive.test]:25")])
def test_domain_wide_bcc_and_relay_stay_off_users_a_domain_admin_may_not_change(api, domain_admin, root_connection,
                                                                                domain, new_domain, param, value):
    # A domain admin may not forward a global admin's or another domain's admin's mail
    # (require_manageable_account); a domain-wide BCC or relay would reach it all the same.
    assert api.put(f"/api/user/bob@{domain}", {"isGlobalAdmin": "yes"}).status_code == 200
    before = domain_entry(root_connection, domain)
    result = domain_admin.put(f"/api/domain/{domain}", {param: value})
    assert result.status_code == 403 and result.json["param"] == param, result.text
    assert domain_entry(root_connection, domain) == before
    assert api.put(f"/api/user/bob@{domain}", {"isGlobalAdmin": "no"}).status_code == 200
    # an admin of a domain it does not manage, by an alias address in an alias domain
    other, alias = new_domain(), new_domain()
    assert api.post(f"/api/domain/{other}").status_code == 201
    assert api.put(f"/api/domain/{domain}", {"addAliasDomain": alias}).status_code == 200
    assert api.put(f"/api/domain/admins/{other}", {"addAdmin": f"alice@{domain}"}).status_code == 200
    root_connection.modify(domain_dn(other), {"domainAdmin": [(ldap3.MODIFY_REPLACE, [f"alice@{alias}"])]})
    result = domain_admin.put(f"/api/domain/{domain}", {param: value})
    assert result.status_code == 403 and result.json["param"] == param, result.text
    root_connection.modify(domain_dn(other), {"domainAdmin": [(ldap3.MODIFY_REPLACE, [f"da@{domain}"])]})
    assert domain_admin.put(f"/api/domain/{domain}", {param: value}).status_code == 200
    assert api.put(f"/api/user/bob@{domain}", {"isGlobalAdmin": "yes"}).status_code == 200
    assert domain_admin.put(f"/api/domain/{domain}", {param: ""}).status_code == 200  # removing is its own


def test_domain_admin_cannot_claim_a_subdomain_of_another_domain(api, domain_admin, root_connection, domain,
                                                                 new_domain):
    other = new_domain()
    assert api.post(f"/api/domain/{other}").status_code == 201
    for name in (f"mail.{other}", f"a.b.{other}"):
        result = domain_admin.put(f"/api/domain/{domain}", {"addAliasDomain": name})
        assert result.status_code == 403 and result.json["param"] == "addAliasDomain", result.text
    assert "domainAliasName" not in domain_entry(root_connection, domain)
    # a subdomain of its own domain, or of a domain it manages too, is its to claim
    assert domain_admin.put(f"/api/domain/{domain}", {"addAliasDomain": f"eu.{domain}"}).status_code == 200
    api.put(f"/api/domain/admins/{other}", {"addAdmin": f"da@{domain}"})
    assert domain_admin.put(f"/api/domain/{domain}", {"addAliasDomain": f"mail.{other}"}).status_code == 200

"""Domain routing (issue 13) as Debian's Postfix sees it: ``postmap -q`` with iRedMail's LDAP
lookup tables (tests/mailstack/postfix, checked against ../shared/upstream/postfix-ldap by
test_mailstack_configs.py), binding as the read-only cn=vmail to the test slapd."""

import pytest

from tests.test_lists_aliases_postfix import expand

PASSWORD = "Secret-pw1!"


@pytest.fixture
def domain(api, new_domain):
    name = new_domain()
    assert api.post(f"/api/domain/{name}").status_code == 201
    for user in ("alice", "bob"):
        assert api.post(f"/api/user/{user}@{name}", {"password": PASSWORD}).status_code == 201
    assert api.post(f"/api/alias/info@{name}", {"members": "carol@external.test"}).status_code == 201
    return name


def maildir(api, mail):
    return api.get(f"/api/user/{mail}").json["_data"]["homeDirectory"][0] + "/Maildir/"


def test_alias_domain_resolves_old_and_new_accounts_until_removed(api, mailstack, domain, new_domain):
    postfix = mailstack.postfix
    alias = new_domain()
    assert postfix.lookup("virtual_mailbox_domains", alias) == []
    assert api.put(f"/api/domain/{domain}", {"addAliasDomain": alias}).status_code == 200
    assert postfix.lookup("virtual_mailbox_domains", alias) == [domain]
    assert postfix.lookup("virtual_mailbox_maps", f"alice@{alias}") == [maildir(api, f"alice@{domain}")]
    assert postfix.lookup("virtual_alias_maps", f"info@{alias}") == ["carol@external.test"]
    # a user created afterwards answers there too
    assert api.post(f"/api/user/dave@{domain}", {"password": PASSWORD}).status_code == 201
    assert postfix.lookup("virtual_mailbox_maps", f"dave@{alias}") == [maildir(api, f"dave@{domain}")]
    assert postfix.lookup("virtual_mailbox_maps", f"nobody@{alias}") == []

    assert api.put(f"/api/domain/{domain}", {"removeAliasDomain": alias}).status_code == 200
    assert postfix.lookup("virtual_mailbox_domains", alias) == []
    for mail in (f"alice@{alias}", f"dave@{alias}"):
        assert postfix.lookup("virtual_mailbox_maps", mail) == []
    assert postfix.lookup("virtual_alias_maps", f"info@{alias}") == []
    # the domain itself is untouched
    assert postfix.lookup("virtual_mailbox_maps", f"alice@{domain}") == [maildir(api, f"alice@{domain}")]


def test_catchall_answers_for_the_domain_and_its_alias_domains(api, mailstack, domain, new_domain):
    postfix = mailstack.postfix
    alias = new_domain()
    api.put(f"/api/domain/{domain}", {"addAliasDomain": alias})
    assert postfix.lookup("catchall_maps", f"@{domain}") == []
    api.put(f"/api/domain/{domain}", {"catchall": f"alice@{domain},archive@elsewhere.test"})
    assert sorted(postfix.lookup("catchall_maps", f"@{domain}")) == sorted([f"alice@{domain}",
                                                                            "archive@elsewhere.test"])
    assert sorted(postfix.lookup("catchall_maps", f"@{alias}")) == sorted([f"alice@{domain}",
                                                                           "archive@elsewhere.test"])
    # an existing alias still wins: Postfix asks catchall_maps last
    assert expand(postfix, f"info@{domain}") == ["carol@external.test"]
    # a disabled domain stops it
    api.put(f"/api/domain/{domain}", {"accountStatus": "disabled"})
    assert postfix.lookup("catchall_maps", f"@{domain}") == []
    api.put(f"/api/domain/{domain}", {"accountStatus": "active"})
    assert postfix.lookup("catchall_maps", f"@{domain}") != []
    api.put(f"/api/domain/{domain}", {"catchall": ""})
    assert postfix.lookup("catchall_maps", f"@{domain}") == []
    assert postfix.lookup("catchall_maps", f"@{alias}") == []


def first_answer(postfix, maps, key):
    """What Postfix uses from a list of maps: the first that answers (main.cf.ldap: user, domain)."""
    for map_name in maps:
        found = postfix.lookup(map_name, key)
        if found:
            return found
    return []


SENDER_BCC = ("sender_bcc_maps_user", "sender_bcc_maps_domain")
RECIPIENT_BCC = ("recipient_bcc_maps_user", "recipient_bcc_maps_domain")
RELAY = ("sender_dependent_relayhost_maps_user", "sender_dependent_relayhost_maps_domain")


def test_bcc_user_before_domain(api, mailstack, domain):
    postfix = mailstack.postfix
    alice, bob = f"alice@{domain}", f"bob@{domain}"
    assert first_answer(postfix, SENDER_BCC, alice) == []
    api.put(f"/api/domain/{domain}", {"senderBcc": "out@archive.test", "recipientBcc": "in@archive.test"})
    assert first_answer(postfix, SENDER_BCC, alice) == ["out@archive.test"]
    assert first_answer(postfix, RECIPIENT_BCC, bob) == ["in@archive.test"]
    api.put(f"/api/user/{alice}", {"senderBcc": "alice-out@archive.test", "recipientBcc": "alice-in@archive.test"})
    assert first_answer(postfix, SENDER_BCC, alice) == ["alice-out@archive.test"]
    assert first_answer(postfix, RECIPIENT_BCC, alice) == ["alice-in@archive.test"]
    assert first_answer(postfix, SENDER_BCC, bob) == ["out@archive.test"]
    # the domain's BCC needs its service: removing the address removes both
    api.put(f"/api/domain/{domain}", {"senderBcc": ""})
    assert postfix.lookup("sender_bcc_maps_domain", bob) == []
    api.put(f"/api/user/{alice}", {"recipientBcc": ""})
    assert first_answer(postfix, RECIPIENT_BCC, alice) == ["in@archive.test"]


def test_relay_user_before_domain(api, mailstack, domain):
    postfix = mailstack.postfix
    alice, bob = f"alice@{domain}", f"bob@{domain}"
    api.put(f"/api/domain/{domain}", {"outboundRelay": "smtp:[192.0.2.2]:25"})
    api.put(f"/api/user/{alice}", {"outboundRelay": "[relay.example.com]:587"})
    assert first_answer(postfix, RELAY, alice) == ["[relay.example.com]:587"]
    assert first_answer(postfix, RELAY, bob) == ["smtp:[192.0.2.2]:25"]
    api.put(f"/api/user/{alice}", {"outboundRelay": ""})
    api.put(f"/api/domain/{domain}", {"outboundRelay": ""})
    assert first_answer(postfix, RELAY, alice) == []


def test_backup_mx(api, mailstack, domain):
    postfix = mailstack.postfix
    assert postfix.lookup("relay_domains", domain) == []
    api.put(f"/api/domain/{domain}", {"is_backupmx": "yes", "primarymx": "mail.primary.test"})
    assert postfix.lookup("relay_domains", domain) == [domain]
    assert postfix.lookup("virtual_mailbox_domains", domain) == []
    assert postfix.lookup("transport_maps_domain", domain) == ["relay:[mail.primary.test]"]
    api.put(f"/api/domain/{domain}", {"is_backupmx": "no"})
    assert postfix.lookup("relay_domains", domain) == []
    assert postfix.lookup("virtual_mailbox_domains", domain) == [domain]
    assert postfix.lookup("transport_maps_domain", domain) == ["dovecot"]


def test_without_the_mail_service_the_domain_stops_resolving(api, mailstack, domain):
    postfix = mailstack.postfix
    api.put(f"/api/domain/{domain}", {"senderBcc": "out@archive.test", "outboundRelay": "[relay.test]:25"})
    lookups = (("virtual_mailbox_domains", domain), ("transport_maps_domain", domain),
               ("sender_bcc_maps_domain", f"bob@{domain}"), ("sender_dependent_relayhost_maps_domain", f"bob@{domain}"))
    before = [postfix.lookup(m, k) for m, k in lookups]
    assert all(before)
    api.put(f"/api/domain/{domain}", {"removeService": "mail"})
    assert [postfix.lookup(m, k) for m, k in lookups] == [[]] * len(lookups)
    api.put(f"/api/domain/{domain}", {"addService": "mail"})
    assert [postfix.lookup(m, k) for m, k in lookups] == before

"""Greylisting written through our API, enforced by the real iRedAPD 6.1 (tests/iredapd_peer.py).

iRedAPD answers "451 4.7.1 ..." (DEFER) to a triplet it greylists and "DUNNO" otherwise.  Each
check uses a sender address of its own, so iRedAPD's tracking of earlier triplets plays no part.
"""

import itertools

import pytest

from tests.conftest import ApiClient

PASSWORD = "Secret-pw1!"
_serial = itertools.count()


def deferred(action):
    return action.startswith("451 4.7.1")


@pytest.fixture
def client(make_app, iredapd_peer):
    client = ApiClient(make_app(**iredapd_peer.app_settings)).login()
    yield client
    # The global setting and whitelists are shared by every test of the session's iRedAPD.
    client.delete("/api/greylisting/global")
    client.post("/api/greylisting/global/whitelists", {"senders": ""})


@pytest.fixture
def domain(client, new_domain):
    name = new_domain()
    assert client.post(f"/api/domain/{name}").status_code == 201
    for local in ("alice", "bob"):
        assert client.post(f"/api/user/{local}@{name}", {"password": PASSWORD}).status_code == 201
    return name


def ask(peer, recipient, sender=None, client_address="203.0.113.10"):
    sender = sender or f"s{next(_serial)}@sender-{next(_serial)}.example.net"
    return peer.ask(sender=sender, recipient=recipient, client_address=client_address)


def test_enabled_domain_defers_unknown_senders_and_disabled_does_not(client, iredapd_peer, domain):
    alice = f"alice@{domain}"
    assert ask(iredapd_peer, alice) == "DUNNO"  # no setting at all: iRedAPD does not greylist
    assert client.post(f"/api/greylisting/{domain}", {"status": "enable"}).status_code == 200
    action = ask(iredapd_peer, alice)
    assert deferred(action), action
    assert ask(iredapd_peer, alice, sender="again@x.example.net") == ask(iredapd_peer, alice,
                                                                         sender="again@x.example.net")
    assert client.post(f"/api/greylisting/{domain}", {"status": "disable"}).status_code == 200
    assert ask(iredapd_peer, alice) == "DUNNO"
    assert client.post(f"/api/greylisting/{domain}", {"status": "enable"}).status_code == 200
    assert client.delete(f"/api/greylisting/{domain}").status_code == 200
    assert ask(iredapd_peer, alice) == "DUNNO"


def test_whitelisted_senders_are_not_deferred(client, iredapd_peer, domain):
    alice, bob = f"alice@{domain}", f"bob@{domain}"
    client.post(f"/api/greylisting/{domain}", {"status": "enable"})
    # (whitelist entry, sender, client address) that it lets through
    cases = [("friend@partner.example.org", "friend@partner.example.org", "203.0.113.20"),
             ("@trusted.example.org", "anyone@trusted.example.org", "203.0.113.21"),
             ("@.corp.example.org", "x@mx.corp.example.org", "203.0.113.22"),
             ("198.51.100.7", None, "198.51.100.7"),
             ("198.51.100.128/25", None, "198.51.100.200")]
    for _, sender, address in cases:
        assert deferred(ask(iredapd_peer, alice, sender, address)), (sender, address)
    entries = ",".join(entry for entry, _, _ in cases)
    assert client.post(f"/api/greylisting/{domain}/whitelists", {"addSenders": entries}).status_code == 200
    for entry, sender, address in cases:
        sender = sender or f"new{next(_serial)}@elsewhere.example.net"
        assert ask(iredapd_peer, alice, sender, address) == "DUNNO", entry
    # what is not whitelisted still waits: another address of the partner, a neighbouring network
    assert deferred(ask(iredapd_peer, alice, "other@partner.example.org", "203.0.113.23"))
    assert deferred(ask(iredapd_peer, alice, None, "198.51.100.127"))
    # a user's own whitelist, and the global one
    client.post(f"/api/greylisting/{alice}/whitelists", {"senders": "192.0.2.5"})
    client.post("/api/greylisting/global/whitelists", {"senders": "@global-friend.example.org"})
    assert ask(iredapd_peer, alice, None, "192.0.2.5") == "DUNNO"
    assert deferred(ask(iredapd_peer, bob, None, "192.0.2.5"))
    assert ask(iredapd_peer, bob, "a@global-friend.example.org", "203.0.113.24") == "DUNNO"
    # removed: deferred again
    client.post(f"/api/greylisting/{domain}/whitelists", {"removeSenders": "198.51.100.7"})
    assert deferred(ask(iredapd_peer, alice, None, "198.51.100.7"))


def test_user_beats_domain_beats_global(client, iredapd_peer, domain):
    alice, bob = f"alice@{domain}", f"bob@{domain}"
    assert client.post("/api/greylisting/global", {"status": "enable"}).status_code == 200
    assert deferred(ask(iredapd_peer, alice)) and deferred(ask(iredapd_peer, bob))
    client.post(f"/api/greylisting/{domain}", {"status": "disable"})
    assert ask(iredapd_peer, alice) == "DUNNO" and ask(iredapd_peer, bob) == "DUNNO"
    client.post(f"/api/greylisting/{alice}", {"status": "enable"})
    assert deferred(ask(iredapd_peer, alice)) and ask(iredapd_peer, bob) == "DUNNO"
    client.post("/api/greylisting/global", {"status": "disable"})
    client.post(f"/api/greylisting/{domain}", {"status": "enable"})
    client.post(f"/api/greylisting/{alice}", {"status": "disable"})
    assert ask(iredapd_peer, alice) == "DUNNO" and deferred(ask(iredapd_peer, bob))
    client.delete(f"/api/greylisting/{alice}")
    assert deferred(ask(iredapd_peer, alice))
    client.delete(f"/api/greylisting/{domain}")
    assert ask(iredapd_peer, alice) == "DUNNO"  # the global setting: disabled


def test_deleted_users_setting_goes_with_it(client, iredapd_peer, domain):
    alice = f"alice@{domain}"
    client.post(f"/api/greylisting/{alice}", {"status": "enable"})
    assert deferred(ask(iredapd_peer, alice))
    assert client.delete(f"/api/user/{alice}").status_code == 200
    assert client.post(f"/api/user/{alice}", {"password": PASSWORD}).status_code == 201
    assert ask(iredapd_peer, alice) == "DUNNO"  # the new alice does not inherit the old one's setting


def test_rows_are_those_iredapds_own_tool_writes(client, iredapd_peer, domain):
    """Each setting and whitelist entry written by iRedAPD (tools/greylisting_admin.py,
    libs/greylisting.py), then by our API: the same row (less its id)."""
    import sqlalchemy as sa

    from iredapi_ldap.store.tables import greylisting, greylisting_whitelist_domains, greylisting_whitelists

    engine = sa.create_engine(iredapd_peer.iredapd_url)

    def rows(table, **match):
        with engine.connect() as conn:
            query = sa.select(table).where(*(table.c[k] == v for k, v in match.items()))
            return [{k: v for k, v in r.items() if k != "id"} for r in conn.execute(query).mappings()]

    def delete(table, **match):
        with engine.begin() as conn:
            conn.execute(table.delete().where(*(table.c[k] == v for k, v in match.items())))

    alice = f"alice@{domain}"
    try:
        for target, account in ((domain, f"@{domain}"), (alice, alice), ("global", "@.")):
            for status in ("enable", "disable"):
                iredapd_peer.tool("greylisting_admin.py", f"--{status}", "--to", account)
                theirs = rows(greylisting, account=account)
                delete(greylisting, account=account)
                assert client.post(f"/api/greylisting/{target}", {"status": status}).status_code == 200
                assert rows(greylisting, account=account) == theirs and len(theirs) == 1
            delete(greylisting, account=account)
        for sender in ("192.0.2.9", "198.51.100.0/24", "friend@example.org", "@example.org", "@.example.org"):
            # greylisting_admin.py --add-whitelist goes through web.py, whose MySQL connection
            # insists on TLS with PyMySQL; its library function is what iRedAdmin calls anyway.
            out = iredapd_peer.python("from libs import utils, greylisting as g; "
                                      "print(g.add_whitelist_sender(utils.create_db_engine('iredapd'), "
                                      f"{alice!r}, {sender!r}))")
            assert "(True,)" in out, out
            theirs = rows(greylisting_whitelists, account=alice)
            delete(greylisting_whitelists, account=alice)
            assert client.post(f"/api/greylisting/{alice}/whitelists", {"senders": sender}).status_code == 200
            assert rows(greylisting_whitelists, account=alice) == theirs and len(theirs) == 1
            delete(greylisting_whitelists, account=alice)
        iredapd_peer.tool("greylisting_admin.py", "--whitelist-domain", "--from", "@spf.example.org")
        theirs = rows(greylisting_whitelist_domains)
        delete(greylisting_whitelist_domains)
        assert client.post("/api/greylisting/whitelist_spf_domains", {"domains": "spf.example.org"}).status_code == 200
        assert rows(greylisting_whitelist_domains) == theirs == [{"domain": "spf.example.org"}]
    finally:
        delete(greylisting_whitelist_domains)
        engine.dispose()


def test_top_level_domain_and_ipv4_mapped_whitelists_are_honoured(client, iredapd_peer, domain):
    # "@.<tld>" is among the sender forms iRedAPD builds (utils.get_policy_addresses_from_email),
    # and Postfix sends an IPv4 client as a.b.c.d: entries given as ::ffff:a.b.c.d must match it.
    alice = f"alice@{domain}"
    client.post(f"/api/greylisting/{domain}", {"status": "enable"})
    assert deferred(ask(iredapd_peer, alice, "x@shop.example", "203.0.113.40"))
    assert deferred(ask(iredapd_peer, alice, None, "192.0.2.77"))
    result = client.post(f"/api/greylisting/{alice}/whitelists", {"senders": "@.example,::ffff:192.0.2.77"})
    assert result.status_code == 200, result.text
    assert ask(iredapd_peer, alice, "y@mail.shop.example", "203.0.113.41") == "DUNNO"
    assert ask(iredapd_peer, alice, None, "192.0.2.77") == "DUNNO"

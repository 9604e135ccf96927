"""White/blacklists written through our API, enforced by the real iRedAPD 6.1 (plugin
amavisd_wblist, tests/iredapd_peer.py).

iRedAPD answers "OK" to a whitelisted sender, "REJECT Blacklisted" to a blacklisted one and
"DUNNO" otherwise.  It walks the recipient's accounts in descending priority (user, domain,
global) and, for each, the sender's forms in descending priority (address, IP, network,
@domain, @.domain, @.), a whitelist row before a blacklist row of the same pair; the first
match decides.
"""

import pytest

from tests.conftest import ApiClient

PASSWORD = "Secret-pw1!"
REJECTED = "REJECT Blacklisted"


@pytest.fixture
def client(make_app, iredapd_peer):
    client = ApiClient(make_app(**iredapd_peer.app_settings)).login()
    yield client
    for direction in ("inbound", "outbound"):  # shared by every test of the session's iRedAPD
        for listname in ("whitelist", "blacklist"):
            client.delete(f"/api/wblist/{direction}/{listname}/global")


@pytest.fixture
def domain(client, new_domain):
    name = new_domain()
    assert client.post(f"/api/domain/{name}").status_code == 201
    for local in ("alice", "bob"):
        assert client.post(f"/api/user/{local}@{name}", {"password": PASSWORD}).status_code == 201
    return name


def add(client, path, addresses):
    result = client.post(f"/api/wblist/{path}", {"addresses": addresses})
    assert result.status_code == 200, result.text


def remove(client, path, addresses):
    result = client.put(f"/api/wblist/{path}", {"addresses": addresses})
    assert result.status_code == 200, result.text


def inbound(peer, recipient, sender, client_address="203.0.113.30"):
    return peer.ask(sender=sender, recipient=recipient, client_address=client_address)


def test_inbound_blacklist_for_user_domain_and_global(client, iredapd_peer, domain, new_domain):
    alice, bob = f"alice@{domain}", f"bob@{domain}"
    other = new_domain()
    client.post(f"/api/domain/{other}")
    client.post(f"/api/user/carol@{other}", {"password": PASSWORD})
    carol = f"carol@{other}"
    spammer = "spammer@bad.example.org"
    assert inbound(iredapd_peer, alice, spammer) == "DUNNO"

    add(client, f"inbound/blacklist/{alice}", spammer)
    assert inbound(iredapd_peer, alice, spammer) == REJECTED
    assert inbound(iredapd_peer, bob, spammer) == "DUNNO"
    remove(client, f"inbound/blacklist/{alice}", spammer)
    assert inbound(iredapd_peer, alice, spammer) == "DUNNO"

    add(client, f"inbound/blacklist/{domain}", "@.bad.example.org")
    assert inbound(iredapd_peer, alice, spammer) == REJECTED
    assert inbound(iredapd_peer, bob, "x@mx.bad.example.org") == REJECTED
    assert inbound(iredapd_peer, carol, spammer) == "DUNNO"
    assert client.delete(f"/api/wblist/inbound/blacklist/{domain}").status_code == 200
    assert inbound(iredapd_peer, bob, spammer) == "DUNNO"

    add(client, "inbound/blacklist/global", "198.51.100.0/24")
    assert inbound(iredapd_peer, carol, "anyone@example.net", "198.51.100.9") == REJECTED
    assert inbound(iredapd_peer, alice, "anyone@example.net", "198.51.100.9") == REJECTED
    assert inbound(iredapd_peer, alice, "anyone@example.net", "198.51.101.9") == "DUNNO"
    remove(client, "inbound/blacklist/global", "198.51.100.0/24")
    assert inbound(iredapd_peer, carol, "anyone@example.net", "198.51.100.9") == "DUNNO"


def test_whitelist_beats_blacklist_as_iredapd_orders_them(client, iredapd_peer, domain):
    alice, bob = f"alice@{domain}", f"bob@{domain}"
    add(client, f"inbound/blacklist/{domain}", "@partner.example.org")
    add(client, f"inbound/whitelist/{alice}", "good@partner.example.org")
    # the user's whitelist comes before the domain's blacklist ...
    assert inbound(iredapd_peer, alice, "good@partner.example.org") == "OK"
    # ... for what it names only; the other users of the domain keep the domain's blacklist
    assert inbound(iredapd_peer, alice, "other@partner.example.org") == REJECTED
    assert inbound(iredapd_peer, bob, "good@partner.example.org") == REJECTED
    # one account's lists: an address (priority 10) comes before its @domain (5)
    add(client, f"inbound/blacklist/{bob}", "@news.example.org")
    add(client, f"inbound/whitelist/{bob}", "editor@news.example.org")
    assert inbound(iredapd_peer, bob, "editor@news.example.org") == "OK"
    assert inbound(iredapd_peer, bob, "ads@news.example.org") == REJECTED
    # and a user's blacklist comes before a broader whitelist
    add(client, "inbound/whitelist/global", "@friendly.example.org")
    add(client, f"inbound/blacklist/{alice}", "troll@friendly.example.org")
    assert inbound(iredapd_peer, alice, "troll@friendly.example.org") == REJECTED
    assert inbound(iredapd_peer, bob, "troll@friendly.example.org") == "OK"
    # a whitelisted entry added to the blacklist moves there (one row per pair)
    add(client, f"inbound/blacklist/{alice}", "good@partner.example.org")
    assert inbound(iredapd_peer, alice, "good@partner.example.org") == REJECTED


def test_outbound_blacklist_of_a_recipient(client, iredapd_peer, domain):
    alice, bob = f"alice@{domain}", f"bob@{domain}"

    def send(user, recipient):
        return iredapd_peer.ask(sasl_username=user, sender=user, recipient=recipient, client_address="192.0.2.44")

    target = "competitor@rival.example.net"
    assert send(alice, target) == "DUNNO"
    add(client, f"outbound/blacklist/{alice}", target)
    assert send(alice, target) == REJECTED
    assert send(alice, "someone@rival.example.net") == "DUNNO"
    assert send(bob, target) == "DUNNO"
    add(client, f"outbound/blacklist/{domain}", "@rival.example.net")
    assert send(bob, "someone@rival.example.net") == REJECTED
    assert client.delete(f"/api/wblist/outbound/blacklist/{domain}").status_code == 200
    remove(client, f"outbound/blacklist/{alice}", target)
    assert send(alice, target) == "DUNNO" and send(bob, "someone@rival.example.net") == "DUNNO"

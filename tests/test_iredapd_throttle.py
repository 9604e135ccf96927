"""The throttle endpoints, enforced by the real iRedAPD 6.1 (tests/iredapd_peer.py).

iRedAPD's throttle plugin counts at END-OF-MESSAGE: outbound for SASL-authenticated senders,
inbound for recipients of unauthenticated mail; over a limit it answers
"REJECT Throttling quota exceeded".
"""

import pytest

from tests.conftest import ApiClient

PASSWORD = "Secret-pw1!"
OVER = "REJECT Throttling quota exceeded"


@pytest.fixture
def client(make_app, iredapd_peer):
    client = ApiClient(make_app(**iredapd_peer.app_settings)).login()
    yield client
    for kind in ("inbound", "outbound"):  # shared by every test of the session's iRedAPD
        client.delete(f"/api/throttle/global/{kind}")


def new_domain_with_users(client, new_domain, *locals_):
    name = new_domain()
    assert client.post(f"/api/domain/{name}").status_code == 201
    for local in locals_:
        assert client.post(f"/api/user/{local}@{name}", {"password": PASSWORD}).status_code == 201
    return name


def send_out(peer, user):
    return peer.ask(protocol_state="END-OF-MESSAGE", sasl_username=user, sender=user,
                    recipient="someone@remote.example.net", recipient_count=1)


def receive(peer, user):
    return peer.ask(protocol_state="END-OF-MESSAGE", sender="someone@remote.example.net", recipient=user,
                    recipient_count=1)


def allowed(send, user, limit):
    """How many messages in a row ``send`` gets through for ``user`` (at most limit + 1 tried)."""
    for count in range(limit + 1):
        action = send(user)
        if action != "DUNNO":
            assert action == OVER, action
            return count
    return limit + 1


HOUR = {"period": "3600", "msg_size": "-1", "max_quota": "-1"}


def test_user_outbound_max_msgs(client, iredapd_peer, new_domain):
    domain = new_domain_with_users(client, new_domain, "alice", "bob")
    alice, bob = f"alice@{domain}", f"bob@{domain}"
    assert client.post(f"/api/throttle/{alice}/outbound", {**HOUR, "max_msgs": "2"}).status_code == 200
    assert allowed(lambda u: send_out(iredapd_peer, u), alice, 5) == 2
    assert send_out(iredapd_peer, bob) == "DUNNO"  # no limit of its own
    assert client.delete(f"/api/throttle/{alice}/outbound").status_code == 200
    assert send_out(iredapd_peer, alice) == "DUNNO"


def test_domain_inbound_limit(client, iredapd_peer, new_domain):
    domain = new_domain_with_users(client, new_domain, "alice", "bob")
    alice, bob = f"alice@{domain}", f"bob@{domain}"
    assert client.post(f"/api/throttle/{domain}/inbound", {**HOUR, "max_msgs": "2"}).status_code == 200
    assert allowed(lambda u: receive(iredapd_peer, u), alice, 5) == 2
    assert allowed(lambda u: receive(iredapd_peer, u), bob, 5) == 2  # counted per recipient
    assert send_out(iredapd_peer, alice) == "DUNNO"  # an inbound limit


def test_user_before_domain_before_global(client, iredapd_peer, new_domain):
    domain = new_domain_with_users(client, new_domain, "alice", "bob")
    other = new_domain_with_users(client, new_domain, "carol")
    alice, bob, carol = f"alice@{domain}", f"bob@{domain}", f"carol@{other}"
    for target, limit in (("global", 1), (domain, 3), (alice, 5)):
        assert client.post(f"/api/throttle/{target}/outbound", {**HOUR, "max_msgs": str(limit)}).status_code == 200
    send = lambda u: send_out(iredapd_peer, u)  # noqa: E731
    assert allowed(send, alice, 8) == 5
    assert allowed(send, bob, 8) == 3
    assert allowed(send, carol, 8) == 1

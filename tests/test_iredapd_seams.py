"""Where the anti-spam features meet alias domains and renames, enforced by the real iRedAPD 6.1
(tests/iredapd_peer.py): iRedAPD maps a recipient in an alias domain to its target domain (its
get_alias_target_domain reads domainAliasName), so a user's greylisting and white/blacklists
apply to its alias-domain address too; after a rename they apply to the new address, and an
account created later at the old address does not inherit them."""

import itertools

from tests.conftest import ApiClient
from tests.test_iredapd_greylisting import deferred

PASSWORD = "Secret-pw1!"
REJECTED = "REJECT Blacklisted"
_serial = itertools.count()


def _unknown_sender():
    return f"s{next(_serial)}@sender-{next(_serial)}.example.net"


def test_policies_follow_alias_domains_and_renames(make_app, iredapd_peer, new_domain):
    client = ApiClient(make_app(**iredapd_peer.app_settings)).login()
    domain, alias = new_domain(), new_domain()
    assert client.post(f"/api/domain/{domain}").status_code == 201
    assert client.put(f"/api/domain/{domain}", {"addAliasDomain": alias}).status_code == 200
    old, new = f"alice@{domain}", f"carol@{domain}"
    assert client.post(f"/api/user/{old}", {"password": PASSWORD}).status_code == 201
    spammer = "spammer@bad.example.org"
    assert client.post(f"/api/greylisting/{old}", {"status": "enable"}).status_code == 200
    # (iRedAPD asks the greylisting plugin first: the spammer passes it, to meet the blacklist)
    assert client.post(f"/api/greylisting/{old}/whitelists", {"addSenders": spammer}).status_code == 200
    assert client.post(f"/api/wblist/inbound/blacklist/{old}", {"addresses": spammer}).status_code == 200

    def ask(recipient, sender):
        return iredapd_peer.ask(sender=sender, recipient=recipient, client_address="203.0.113.40")

    for recipient in (old, f"alice@{alias}"):
        assert deferred(ask(recipient, _unknown_sender())), recipient
        assert ask(recipient, spammer) == REJECTED, recipient

    assert client.post(f"/api/user/{old}/change_email/{new}").status_code == 200
    for recipient in (new, f"carol@{alias}"):
        assert deferred(ask(recipient, _unknown_sender())), recipient
        assert ask(recipient, spammer) == REJECTED, recipient
    # a new account at the old address starts with no settings of its own
    assert client.post(f"/api/user/{old}", {"password": PASSWORD}).status_code == 201
    for recipient in (old, f"alice@{alias}"):
        assert ask(recipient, _unknown_sender()) == "DUNNO", recipient
        assert ask(recipient, spammer) == "DUNNO", recipient

"""DELETE /api/domain/<d> takes the domain out of every other domain's entries, so that an
account re-created at one of its addresses inherits nothing (issue 10, item 3)."""

import ldap3
import pytest

from iredapi_ldap.directory import references
from tests.conftest import (
    SUFFIX,
    ApiClient,
    _ssha,
    alias_dn,
    count_entries,
    domain_dn,
    externals_dn,
    list_dn,
    read_entry,
    user_dn,
)

PASSWORD = "Secret-pw1!"


def ok(result, status=200):
    assert result.status_code == status, result.text
    return result


class Scene:
    """``gone`` (alias domain ``alias-<gone>``) and ``other``, whose entries name gone's accounts
    in every way the directory can."""

    def __init__(self, api, conn, new_domain):
        self.api, self.conn = api, conn
        self.gone, self.other = new_domain(), new_domain()
        gone, other = self.gone, self.other
        self.alias_domain = f"alias-{gone}"
        ok(api.post(f"/api/domain/{gone}"), 201)
        ok(api.post(f"/api/domain/{other}"), 201)
        conn.modify(domain_dn(gone), {"domainAliasName": [(ldap3.MODIFY_ADD, [self.alias_domain])]})
        self.ga, self.m, self.al, self.lg = f"ga@{gone}", f"m@{gone}", f"al@{gone}", f"lg@{gone}"
        self.o1, self.o2 = f"o1@{other}", f"o2@{other}"
        self.far = f"x@{self.alias_domain}"  # an alias-domain address: an external member
        for mail in (self.ga, self.m, self.o1, self.o2):
            ok(api.post(f"/api/user/{mail}", {"password": PASSWORD}), 201)
        ok(api.put(f"/api/user/{self.ga}", {"addService": "domainadmin"}))
        ok(api.post(f"/api/alias/{self.al}", {"members": self.o1}), 201)
        # gone's list with a member in other: memberOfGroup=lg@gone on o1
        ok(api.post(f"/api/maillist/{self.lg}", {"members": f"{self.m},{self.o1}"}), 201)
        # other's domainAdmin: gone's user ga, and a standalone admin whose address is in gone
        self.boss = f"boss@{gone}"
        conn.add(f"mail={self.boss},o=domainAdmins,{SUFFIX}", attributes={
            "objectClass": ["mailAdmin"], "mail": [self.boss], "userPassword": [_ssha(PASSWORD)],
            "accountStatus": ["active"]})
        conn.modify(domain_dn(other), {"domainAdmin": [(ldap3.MODIFY_ADD, [self.ga, self.boss])]})
        # forwardings to gone's addresses (its own name and its alias domain)
        ok(api.put(f"/api/user/{self.o1}", {"forwarding": f"{self.m},{self.o2},{self.m.split('@')[0]}"
                                                          f"@{self.alias_domain}"}))
        ok(api.post(f"/api/alias/team@{other}", {"members": f"{self.ga},{self.al},{self.o2},{self.far}"}), 201)
        # other's lists: members (member DN + memberOfGroup), moderators, external members
        ok(api.post(f"/api/maillist/ol@{other}", {"members": f"{self.ga},{self.al},{self.lg},{self.o2},"
                                                             f"{self.far},y@elsewhere.test",
                                                  "moderators": f"{self.ga},{self.o2}"}), 201)
        ok(api.post(f"/api/maillist/only@{other}", {"members": self.far}), 201)
        # a disabled list keeps its member DNs while memberOfGroup is taken off its members
        ok(api.post(f"/api/maillist/dl@{other}", {"members": f"{self.m},{self.o2}"}), 201)
        ok(api.put(f"/api/maillist/dl@{other}", {"accountStatus": "disabled"}))
        dl = read_entry(conn, list_dn(f"dl@{other}"))
        assert {v.lower() for v in dl["member"]} == {user_dn(self.m).lower(), user_dn(self.o2).lower()}
        # a DN written by another tool in another spelling
        conn.modify(list_dn(f"dl@{other}"), {"member": [(ldap3.MODIFY_ADD, [
            f"MAIL={self.ga.upper()}, OU=Users, domainName={gone.upper()},o=domains,{SUFFIX}"])]})

    def assert_other_is_clean(self):
        conn, gone, other = self.conn, self.gone, self.other

        def names_gone(value):
            return value.lower().endswith((f"@{gone}", f"@{self.alias_domain}"))

        domain = read_entry(conn, domain_dn(other))
        assert domain["domainAdmin"] == [self.boss]  # the standalone admin outlives gone
        o1 = read_entry(conn, user_dn(self.o1))
        assert o1["mailForwardingAddress"] == [self.o2]
        assert "memberOfGroup" not in o1
        team = read_entry(conn, alias_dn(f"team@{other}"))
        assert team["mailForwardingAddress"] == [self.o2]
        ol = read_entry(conn, list_dn(f"ol@{other}"))
        assert [v.lower() for v in ol["member"]] == [user_dn(self.o2).lower()]
        assert ol["listModerator"] == [self.o2] and ol["listAllowedUser"] == [self.o2]
        assert read_entry(conn, externals_dn(f"ol@{other}"))["mail"] == ["y@elsewhere.test"]
        assert read_entry(conn, externals_dn(f"only@{other}")) is None
        dl = read_entry(conn, list_dn(f"dl@{other}"))
        assert [v.lower() for v in dl["member"]] == [user_dn(self.o2).lower()]
        # nothing anywhere outside gone names it any more
        for entry_dn in (user_dn(self.o2), list_dn(f"only@{other}")):
            entry = read_entry(conn, entry_dn)
            assert not [v for values in entry.values() for v in values if names_gone(v)], entry
        assert count_entries(conn, domain_dn(other), f"(|(memberOfGroup=*@{gone})(mailForwardingAddress=*@{gone})"
                                                    f"(mailForwardingAddress=*@{self.alias_domain})"
                                                    f"(listAllowedUser=*@{gone})(mail=*@{self.alias_domain}))") == 0

    def assert_nothing_inherited(self):
        """Re-created, gone's accounts start from nothing."""
        api, gone = self.api, self.gone
        ok(api.post(f"/api/domain/{gone}"), 201)
        ok(api.post(f"/api/user/{self.ga}", {"password": PASSWORD}), 201)
        ok(api.put(f"/api/user/{self.ga}", {"addService": "domainadmin"}))
        ok(api.post(f"/api/maillist/{self.lg}"), 201)
        ok(api.post(f"/api/user/{self.m}", {"password": PASSWORD}), 201)
        assert ok(api.get(f"/api/maillist/{self.lg}")).json["_data"]["members"] == []
        assert "memberOfGroup" not in ok(api.get(f"/api/user/{self.ga}")).json["_data"]
        assert "memberOfGroup" not in ok(api.get(f"/api/user/{self.m}")).json["_data"]
        # ga is admin of nothing in other
        client = ApiClient(api.app).login(self.ga, PASSWORD)
        assert client.get(f"/api/domain/{self.other}").status_code == 403
        assert client.get("/api/domains", params={"name_only": "yes"}).json["_data"] == []


def test_delete_takes_the_domain_out_of_every_other_domain(api, root_connection, new_domain, monkeypatch):
    scene = Scene(api, root_connection, new_domain)
    # before: ga administers other, o1 is a member of lg
    client = ApiClient(api.app).login(scene.ga, PASSWORD)
    assert client.get(f"/api/domain/{scene.other}").status_code == 200
    assert read_entry(root_connection, user_dn(scene.o1))["memberOfGroup"] == [scene.lg]
    monkeypatch.setattr(references, "_MEMBER_BATCH", 2)  # several member searches with few accounts

    ok(api.delete(f"/api/domain/{scene.gone}"))
    assert count_entries(root_connection, domain_dn(scene.gone)) == 0
    scene.assert_other_is_clean()
    scene.assert_nothing_inherited()


@pytest.mark.parametrize("crash_at", [3, 7, 11])
def test_a_domain_delete_killed_half_way_is_finished_by_a_retry(api, root_connection, new_domain, monkeypatch,
                                                                 crash_at):
    """Killed while taking out address references (3rd write), member DNs (7th) or entries (11th)."""
    scene = Scene(api, root_connection, new_domain)
    ldap = api.app.services.directory.client
    real_modify, real_delete, writes = ldap.modify, ldap.delete, []

    def counted(real):
        def write(dn, *args):
            writes.append(dn)
            if len(writes) == crash_at:
                raise RuntimeError("worker killed")
            return real(dn, *args)
        return write

    monkeypatch.setattr(ldap, "modify", counted(real_modify))
    monkeypatch.setattr(ldap, "delete", counted(real_delete))
    assert api.delete(f"/api/domain/{scene.gone}").status_code == 500
    assert read_entry(root_connection, domain_dn(scene.gone)) is not None  # the domain entry goes last
    monkeypatch.setattr(ldap, "modify", real_modify)
    monkeypatch.setattr(ldap, "delete", real_delete)

    ok(api.delete(f"/api/domain/{scene.gone}"))
    assert count_entries(root_connection, domain_dn(scene.gone)) == 0
    scene.assert_other_is_clean()
    scene.assert_nothing_inherited()


def test_references_are_taken_out_before_any_entry_goes(api, root_connection, new_domain, monkeypatch):
    scene = Scene(api, root_connection, new_domain)

    def crash(*args, **kwargs):
        raise RuntimeError("worker killed")

    from iredapi_ldap.directory import domains
    monkeypatch.setattr(domains, "delete_subtree", crash)
    assert api.delete(f"/api/domain/{scene.gone}").status_code == 500
    scene.assert_other_is_clean()
    assert read_entry(root_connection, user_dn(scene.ga)) is not None


def test_a_reference_added_while_the_accounts_went_is_taken_out_too(api, root_connection, new_domain, monkeypatch):
    """A request that raced the delete (here: forwarding o1 to ga just before the accounts
    go) leaves nothing behind: the references are looked for once more before the domain entry."""
    scene = Scene(api, root_connection, new_domain)
    from iredapi_ldap.directory import domains
    real = domains.delete_accounts

    def late_writer(directory, domain, before_delete=None):
        root_connection.modify(user_dn(scene.o1), {"mailForwardingAddress": [(ldap3.MODIFY_ADD, [scene.ga])],
                                                   "memberOfGroup": [(ldap3.MODIFY_ADD, [scene.lg])]})
        return real(directory, domain, before_delete)

    monkeypatch.setattr(domains, "delete_accounts", late_writer)
    ok(api.delete(f"/api/domain/{scene.gone}"))
    scene.assert_other_is_clean()


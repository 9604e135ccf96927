"""`iredapi-ldap recount` repairs domainCurrent* counters other tools left wrong."""

import time

import ldap3

from iredapi_ldap.cli import main
from tests.conftest import SUFFIX, VMAILADMIN_PASSWORD, read_entry

MB = 1024 * 1024


def test_recount_repairs_the_counters(api, root_connection, new_domain, ldap_server, tmp_path, capsys):
    domain = new_domain()
    api.post(f"/api/domain/{domain}")
    for i, quota in enumerate((3, 5)):
        api.post(f"/api/user/u{i}@{domain}", {"password": "Secret-pw1!", "mailQuota": str(quota)})
    api.post(f"/api/alias/team@{domain}", {"members": f"u0@{domain}"})
    dn = f"domainName={domain},o=domains,{SUFFIX}"
    root_connection.modify(dn, {"domainCurrentUserNumber": [(ldap3.MODIFY_REPLACE, ["40"])],
                                "domainCurrentQuotaSize": [(ldap3.MODIFY_REPLACE, ["1"])],
                                "domainCurrentAliasNumber": [(ldap3.MODIFY_REPLACE, [])]})
    settings = tmp_path / "settings.py"
    settings.write_text(
        f'ldap_uri = "{ldap_server.ldap_uri}"\nldap_basedn = "o=domains,{SUFFIX}"\n'
        f'ldap_domainadmin_dn = "o=domainAdmins,{SUFFIX}"\nldap_bind_dn = "cn=vmailadmin,{SUFFIX}"\n'
        f'ldap_bind_password = "{VMAILADMIN_PASSWORD}"\nDATA_DIR = "{tmp_path}"\n')
    assert main(["--config", str(settings), "recount", domain.upper()]) == 0
    assert f"{domain}: 2 users, 1 aliases, 0 lists, {8 * MB} bytes" in capsys.readouterr().out
    entry = read_entry(root_connection, dn)
    assert entry["domainCurrentUserNumber"] == ["2"]
    assert entry["domainCurrentQuotaSize"] == [str(8 * MB)]
    assert entry["domainCurrentAliasNumber"] == ["1"]
    assert entry["domainCurrentListNumber"] == ["0"]
    assert main(["--config", str(settings), "recount", "not a domain"]) == 2
    assert "INVALID_DOMAIN_NAME" in capsys.readouterr().err


def _settings_file(ldap_server, tmp_path):
    settings = tmp_path / "settings.py"
    settings.write_text(
        f'ldap_uri = "{ldap_server.ldap_uri}"\nldap_basedn = "o=domains,{SUFFIX}"\n'
        f'ldap_domainadmin_dn = "o=domainAdmins,{SUFFIX}"\nldap_bind_dn = "cn=vmailadmin,{SUFFIX}"\n'
        f'ldap_bind_password = "{VMAILADMIN_PASSWORD}"\nDATA_DIR = "{tmp_path}"\n')
    return settings


def _add_user_entry(conn, domain, local):
    mail = f"{local}@{domain}"
    conn.add(f"mail={mail},ou=Users,domainName={domain},o=domains,{SUFFIX}", attributes={
        "objectClass": ["inetOrgPerson", "mailUser"], "mail": [mail], "uid": [local], "cn": [local],
        "sn": [local], "accountStatus": ["active"]})


def test_a_recount_leaves_a_create_in_flight_alone(api, root_connection, new_domain, ldap_server, tmp_path):
    """A create that reserved its slot and has not added its entry yet is no drift: a
    periodic recount must not write the lower count (the add lands a moment later)."""
    import threading

    domain = new_domain()
    api.post(f"/api/domain/{domain}")
    for i in range(2):
        api.post(f"/api/user/u{i}@{domain}", {"password": "Secret-pw1!"})
    dn = f"domainName={domain},o=domains,{SUFFIX}"
    root_connection.modify(dn, {"domainCurrentUserNumber": [(ldap3.MODIFY_REPLACE, ["3"])]})  # the reservation
    settings = _settings_file(ldap_server, tmp_path)
    answer = []
    recount = threading.Thread(target=lambda: answer.append(
        main(["--config", str(settings), "recount", "--settle", "1", domain])))
    recount.start()
    time.sleep(0.3)
    _add_user_entry(root_connection, domain, "late")  # the create's add
    recount.join(30)
    assert answer == [0]
    assert read_entry(root_connection, dn)["domainCurrentUserNumber"] == ["3"]


def test_recount_of_every_domain_skips_one_deleted_meanwhile(api, root_connection, new_domain, ldap_server,
                                                             tmp_path, capsys, monkeypatch):
    from iredapi_ldap.directory import domains as domain_directory

    doomed, kept = new_domain(), new_domain()
    for domain in (doomed, kept):
        api.post(f"/api/domain/{domain}")
    dn = f"domainName={kept},o=domains,{SUFFIX}"
    root_connection.modify(dn, {"domainCurrentUserNumber": [(ldap3.MODIFY_REPLACE, ["9"])]})
    real = domain_directory.list_domains

    def listed_then_deleted(*args, **kwargs):
        entries = list(real(*args, **kwargs))
        assert api.delete(f"/api/domain/{doomed}").status_code == 200
        return entries

    monkeypatch.setattr(domain_directory, "list_domains", listed_then_deleted)
    assert main(["--config", str(_settings_file(ldap_server, tmp_path)), "recount", "--settle", "0"]) == 0
    out = capsys.readouterr()
    assert f"{kept}: 0 users" in out.out and doomed not in out.out + out.err
    assert read_entry(root_connection, dn)["domainCurrentUserNumber"] == ["0"]

"""`iredapi-ldap recount` repairs domainCurrent* counters other tools left wrong."""

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

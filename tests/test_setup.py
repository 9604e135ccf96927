"""Schema install and tree bootstrap: idempotent, with iRedMail's access rules; the dev run."""

import subprocess
import sys

import ldap3
import pytest

from iredapi_ldap.cli import main
from iredapi_ldap.directory import setup as directory_setup
from tests.conftest import SUFFIX, VMAIL_PASSWORD, VMAILADMIN_PASSWORD, base_settings


def _bind(ldap_server, dn, password):
    conn = ldap3.Connection(ldap3.Server(ldap_server.ldap_uri, get_info=ldap3.NONE), dn, password,
                            client_strategy=ldap3.SAFE_SYNC, raise_exceptions=False)
    status, result, _, _ = conn.bind()
    assert status, result
    return conn


def test_install_and_bootstrap_again_change_nothing(ldap_server, root_connection):
    assert directory_setup.install_schema(root_connection, SUFFIX) == []
    from iredapi_ldap.localslapd import peercred_dn

    settings = base_settings(ldap_server.ldap_uri)
    assert directory_setup.bootstrap_tree(
        root_connection, settings, vmail_password_hash="{SSHA}unused", vmailadmin_password_hash="{SSHA}unused",
        admin_mail="root@example.com", admin_password_hash="{SSHA}unused",
        manager_identities=[peercred_dn()]) == []


def test_the_cli_reports_nothing_to_do(ldap_server, tmp_path, capsys):
    settings = tmp_path / "settings.py"
    settings.write_text(f'ldap_basedn = "o=domains,{SUFFIX}"\nldap_domainadmin_dn = "o=domainAdmins,{SUFFIX}"\n'
                        f'ldap_bind_dn = "cn=vmailadmin,{SUFFIX}"\nldap_bind_password = "{VMAILADMIN_PASSWORD}"\n')
    assert main(["--config", str(settings), "schema-install", "--ldapi", ldap_server.ldapi_uri]) == 0
    assert main(["--config", str(settings), "bootstrap", "--ldapi", ldap_server.ldapi_uri]) == 0
    out = capsys.readouterr().out
    assert "schema: already installed" in out and "bootstrap: tree already complete" in out


def test_access_rules(ldap_server, api, new_domain):
    domain = new_domain()
    api.post(f"/api/domain/{domain}")
    api.post(f"/api/user/acl@{domain}", {"password": "Secret-pw1!"})
    api.post(f"/api/user/other@{domain}", {"password": "Secret-pw1!"})
    user_dn = f"mail=acl@{domain},ou=Users,domainName={domain},o=domains,{SUFFIX}"
    vmail = _bind(ldap_server, f"cn=vmail,{SUFFIX}", VMAIL_PASSWORD)
    status, result, response, _ = vmail.search(user_dn, "(objectClass=*)", search_scope=ldap3.BASE,
                                               attributes=["mail", "homeDirectory"])
    assert status and response[0]["attributes"]["mail"] == [f"acl@{domain}"]
    status, result, _, _ = vmail.modify(user_dn, {"cn": [(ldap3.MODIFY_REPLACE, ["hacked"])]})
    assert result["result"] == 50  # insufficientAccessRights: cn=vmail only reads
    # a mail user sees other users, but never their password hashes
    user = _bind(ldap_server, user_dn, "Secret-pw1!")
    status, result, response, _ = user.search(f"ou=Users,domainName={domain},o=domains,{SUFFIX}",
                                              f"(mail=other@{domain})", attributes=["mail", "userPassword"])
    found = [r["raw_attributes"] for r in response if r.get("type") == "searchResEntry"]
    assert found and found[0]["mail"] == [f"other@{domain}".encode()]
    assert not found[0].get("userPassword")
    # the admins' container is closed to mail users
    status, result, response, _ = user.search(f"o=domainAdmins,{SUFFIX}", "(objectClass=*)", attributes=["mail"])
    assert not [r for r in response if r.get("type") == "searchResEntry"]
    for conn in (vmail, user):
        conn.unbind()


def test_anonymous_cannot_read(ldap_server):
    conn = ldap3.Connection(ldap3.Server(ldap_server.ldap_uri, get_info=ldap3.NONE),
                            client_strategy=ldap3.SAFE_SYNC, raise_exceptions=False)
    conn.bind()
    status, result, response, _ = conn.search(f"o=domains,{SUFFIX}", "(objectClass=*)", attributes=["mail"])
    assert not [r for r in response if r.get("type") == "searchResEntry"]
    conn.unbind()


def test_dev_sets_up_a_private_server_and_reuses_it(tmp_path):
    data = tmp_path / "d"
    command = [sys.executable, "-m", "iredapi_ldap.cli", "dev", "--data", str(data), "--no-serve"]
    first = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    credentials = (data / "admin-credentials.txt").read_text()
    assert credentials.startswith("postmaster@example.com ")
    assert oct((data / "settings.py").stat().st_mode & 0o777) == "0o600"
    second = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, second.stderr
    assert (data / "admin-credentials.txt").read_text() == credentials
    assert "schema: already installed" in second.stdout


@pytest.mark.parametrize("schema", directory_setup.SCHEMA_FILES)
def test_schema_files_parse(schema):
    entries = directory_setup.read_ldif(directory_setup.SCHEMA_DIR / schema)
    assert len(entries) == 1 and entries[0][0].startswith("cn=")
    assert entries[0][1]["olcAttributeTypes"]


def test_read_ldif_follows_rfc_2849(tmp_path):
    path = tmp_path / "x.ldif"
    path.write_text("# a comment\ndn: cn=x,cn=schema,cn=config\nobjectClass: olcSchemaConfig\n"
                    "cn:: w6k=\nolcAttributeTypes: ( 1.2.3 NAME 'a'\n  DESC 'folded' )\n"
                    "olcAttributeTypes: ( 1.2.4 NAME 'b' )\n\n", encoding="utf-8")
    assert directory_setup.read_ldif(path) == [("cn=x,cn=schema,cn=config", {
        "objectClass": ["olcSchemaConfig"], "cn": ["é"],
        "olcAttributeTypes": ["( 1.2.3 NAME 'a' DESC 'folded' )", "( 1.2.4 NAME 'b' )"]})]

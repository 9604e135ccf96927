"""The mail-stack harness: our Postfix/Dovecot configs ask what iRedMail's ask, and they work.

1. Each of our Postfix maps and our Dovecot LDAP settings equals iRedMail's upstream file
   (read from ../shared/upstream when it is there).
2. Entries planted exactly as iRedMail writes them resolve in the real Postfix and Dovecot,
   and stop resolving once the account or its domain is disabled.
"""

import base64
import hashlib
import os
import time
from pathlib import Path

import ldap3
import pytest
from ldap3.utils.dn import parse_dn

from tests.mailstack import DOVECOT_LDAP_CONF, DOVECOT_TEMPLATE_DIR, POSTFIX_TEMPLATE_DIR, LdapTarget, render

REPO = Path(__file__).resolve().parents[1]
UPSTREAM = REPO.parent / "shared" / "upstream"
needs_upstream = pytest.mark.skipif(not UPSTREAM.is_dir(), reason=f"no upstream reference at {UPSTREAM}")

# Placeholder values for comparing search bases; the server and password do not matter here.
SAMPLE_LDAP = LdapTarget(server_uri="ldap://127.0.0.1:389", basedn="o=domains,dc=example,dc=com",
                         bind_dn="cn=vmail,dc=example,dc=com", bind_password="secret")
# iRedMail's installer fills these (upstream/SOURCES.md).
UPSTREAM_PLACEHOLDERS = {"PH_LDAP_BASEDN": SAMPLE_LDAP.basedn, "PH_LDAP_ATTR_GROUP_USERS": "Users",
                         "PH_LDAP_BINDDN": SAMPLE_LDAP.bind_dn}

POSTFIX_LOOKUP_KEYS = ("search_base", "scope", "query_filter", "result_attribute", "result_format")
DOVECOT_LOOKUP_KEYS = ("base", "scope", "deref", "auth_bind", "user_filter", "user_attrs", "pass_filter",
                       "pass_attrs", "iterate_filter", "iterate_attrs", "default_pass_scheme")
# Upstream ships these commented out; iRedMail's installer enables them (functions/dovecot.sh).
DOVECOT_COMMENTED_UPSTREAM = ("iterate_filter", "iterate_attrs")


def parse_postfix_cf(text):
    """Postfix configuration syntax: 'name = value', continuation lines start with whitespace."""
    params, name = {}, None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace() and name:
            params[name] += " " + line.strip()
            continue
        name, _, value = line.partition("=")
        name = name.strip()
        params[name] = value.strip()
    return params


def parse_dovecot_args(text, commented_keys=()):
    """Dovecot's LDAP args file: 'key = value' lines; ``commented_keys`` are read even when commented out."""
    params = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#"):
            uncommented = line.lstrip("#").strip()
            if uncommented.partition("=")[0].strip() not in commented_keys:
                continue
            line = uncommented
        if "=" in line:
            key, _, value = line.partition("=")
            params[key.strip()] = value.strip()
    return params


def upstream_value(value):
    for placeholder, replacement in UPSTREAM_PLACEHOLDERS.items():
        value = value.replace(placeholder, replacement)
    return value


# --- 1. same lookups as upstream --------------------------------------------------------------


@needs_upstream
def test_postfix_maps_cover_upstream():
    ours = {path.name for path in POSTFIX_TEMPLATE_DIR.glob("*.cf")}
    upstream = {path.name for path in (UPSTREAM / "postfix-ldap").glob("*.cf")}
    assert ours == upstream


@needs_upstream
@pytest.mark.parametrize("map_file", sorted(path.name for path in POSTFIX_TEMPLATE_DIR.glob("*.cf")))
def test_postfix_map_matches_upstream(map_file):
    ours = parse_postfix_cf(render((POSTFIX_TEMPLATE_DIR / map_file).read_text(), SAMPLE_LDAP.placeholders()))
    upstream = parse_postfix_cf((UPSTREAM / "postfix-ldap" / map_file).read_text())
    for key in POSTFIX_LOOKUP_KEYS:
        upstream_setting = upstream.get(key)
        expected = None if upstream_setting is None else upstream_value(upstream_setting)
        assert ours.get(key) == expected, key
    assert ours["bind_dn"] == SAMPLE_LDAP.bind_dn  # binds as cn=vmail, like upstream
    assert (ours["bind"], ours["version"]) == ("yes", "3")


@needs_upstream
def test_dovecot_ldap_settings_match_upstream():
    ours = parse_dovecot_args(render((DOVECOT_TEMPLATE_DIR / DOVECOT_LDAP_CONF).read_text(),
                                     SAMPLE_LDAP.placeholders()))
    upstream = parse_dovecot_args((UPSTREAM / "dovecot-ldap.conf").read_text(), DOVECOT_COMMENTED_UPSTREAM)
    for key in DOVECOT_LOOKUP_KEYS:
        assert key in upstream, key
        assert ours.get(key) == upstream_value(upstream[key]), key
    assert ours["dn"] == SAMPLE_LDAP.bind_dn


# --- 2. planted iRedMail entries in the real Postfix and Dovecot ------------------------------

DOMAIN = "mailstack.test"
USER = f"alice@{DOMAIN}"
USER_SHADOW_ADDRESS = f"alice.smith@{DOMAIN}"
PASSWORD = "Mailstack-pw1"
HOME = f"/var/vmail/vmail1/{DOMAIN}/a/l/i/alice-2026.05.14.10.20.30/"
QUOTA_BYTES = 1024 * 1048576
FORWARD_TO = "alice@elsewhere.example"
ALIAS = f"info@{DOMAIN}"
ALIAS_MEMBERS = [USER, "bob@external.example"]
LIST = f"team@{DOMAIN}"
EXTERNAL_MEMBER = "carol@external.example"

# iRedAdmin attrs.USER_SERVICES_OF_NORMAL_USER .
DEFAULT_USER_SERVICES = (
    "internal doveadm lib-storage indexer-worker dsync quota-status "
    "mail smtp smtpsecured smtptls pop3 pop3secured pop3tls imap imapsecured imaptls "
    "managesieve managesievesecured managesievetls sieve sievesecured sievetls "
    "deliver lda lmtp recipientbcc senderbcc forward shadowaddress "
    "displayedInGlobalAddressBook sogo sogowebmail sogocalendar sogoactivesync"
).split()


def ssha512(password):
    """iRedAdmin's {SSHA512}: base64(sha512(password + salt) + salt), 8-byte salt."""
    salt = os.urandom(8)
    return "{SSHA512}" + base64.b64encode(hashlib.sha512(password.encode() + salt).digest() + salt).decode()


def iredmail_entries(basedn):
    """(dn, attributes) in creation order, as iRedAdmin writes them (libs/ldaplib/iredldif.py)."""
    domain_dn = f"domainName={DOMAIN},{basedn}"
    user_dn = f"mail={USER},ou=Users,{domain_dn}"
    entries = [(domain_dn, {
        "objectClass": ["mailDomain"], "domainName": [DOMAIN], "mtaTransport": ["dovecot"],
        "enabledService": ["mail"], "accountStatus": ["active"], "cn": [DOMAIN],
        "accountSetting": ["minPasswordLength:8", "defaultQuota:1024"],
    })]
    entries += [(f"ou={ou},{domain_dn}", {"objectClass": ["top", "organizationalUnit"], "ou": [ou]})
                for ou in ("Users", "Groups", "Aliases", "Externals")]
    entries.append((user_dn, {
        "objectClass": ["inetOrgPerson", "mailUser", "shadowAccount", "amavisAccount"],
        "mail": [USER], "userPassword": [ssha512(PASSWORD)], "cn": ["Alice"], "sn": ["alice"],
        "uid": ["alice"],
        "homeDirectory": [HOME], "accountStatus": ["active"], "enabledService": DEFAULT_USER_SERVICES,
        "preferredLanguage": ["en_US"], "shadowLastChange": [str(int(time.time() // 86400))],
        "amavisLocal": ["TRUE"], "mailQuota": [str(QUOTA_BYTES)], "mailboxFormat": ["maildir"],
        "mailboxFolder": ["Maildir"], "shadowAddress": [USER_SHADOW_ADDRESS],
        "mailForwardingAddress": [USER, FORWARD_TO],  # keep a copy and forward
        "memberOfGroup": [LIST],
    }))
    entries.append((f"mail={ALIAS},ou=Aliases,{domain_dn}", {
        "objectClass": ["mailAlias"], "mail": [ALIAS], "accountStatus": ["active"], "cn": ["Info"],
        "enabledService": ["mail", "deliver"], "mailForwardingAddress": ALIAS_MEMBERS,
    }))
    entries.append((f"mail={LIST},ou=Groups,{domain_dn}", {
        "objectClass": ["mailList"], "mail": [LIST], "accountStatus": ["active"], "cn": ["Team"],
        "enabledService": ["mail", "deliver"], "accessPolicy": ["public"], "member": [user_dn],
    }))
    entries.append((f"memberOfGroup={LIST},ou=Externals,{domain_dn}", {
        "objectClass": ["mailExternalUser"], "memberOfGroup": [LIST], "mail": [EXTERNAL_MEMBER],
        "accountStatus": ["active"], "enabledService": ["mail", "deliver"],
    }))
    return entries


def ldap_ok(operation_result, what):
    _, result, response, _ = operation_result
    assert result["result"] == 0, f"{what}: {result}"
    return response


def delete_subtree(conn, dn):
    _, result, response, _ = conn.search(dn, "(objectClass=*)", search_scope=ldap3.SUBTREE, attributes=[])
    if result["result"] == 32:  # noSuchObject: nothing to delete
        return
    found = [item["dn"] for item in response if item.get("type") == "searchResEntry"]
    for entry_dn in sorted(found, key=lambda d: len(parse_dn(d)), reverse=True):  # children first
        ldap_ok(conn.delete(entry_dn), f"delete {entry_dn}")


@pytest.fixture
def planted_domain(ldap_server, root_connection):
    """The mailstack.test domain with a user, an alias and an old-style list; removed afterwards."""
    entries = iredmail_entries(ldap_server.basedn)
    domain_dn = entries[0][0]
    delete_subtree(root_connection, domain_dn)  # left over from an interrupted run
    for dn, attributes in entries:
        ldap_ok(root_connection.add(dn, attributes=attributes), f"add {dn}")
    yield dict(entries)
    delete_subtree(root_connection, domain_dn)


def test_planted_accounts_resolve(mailstack, planted_domain):
    postfix, dovecot = mailstack.postfix, mailstack.dovecot
    assert postfix.lookup("virtual_mailbox_domains", DOMAIN) == [DOMAIN]
    assert postfix.lookup("virtual_mailbox_domains", "unknown.test") == []
    assert postfix.lookup("transport_maps_domain", DOMAIN) == ["dovecot"]

    # result_format '%s/Maildir/' after a homeDirectory that ends in '/': Postfix really says '//'.
    mailbox = [HOME + "/Maildir/"]
    assert postfix.lookup("virtual_mailbox_maps", USER) == mailbox
    assert postfix.lookup("virtual_mailbox_maps", USER_SHADOW_ADDRESS) == mailbox
    assert postfix.lookup("virtual_mailbox_maps", f"nobody@{DOMAIN}") == []
    assert postfix.lookup("sender_login_maps", USER) == [USER]
    assert postfix.lookup("sender_login_maps", USER_SHADOW_ADDRESS) == [USER]
    assert postfix.lookup("virtual_group_members_maps", USER) == [USER]

    assert sorted(postfix.lookup("virtual_alias_maps", USER)) == sorted([USER, FORWARD_TO])
    assert sorted(postfix.lookup("virtual_alias_maps", ALIAS)) == sorted(ALIAS_MEMBERS)
    assert sorted(postfix.lookup("virtual_group_maps", LIST)) == sorted([USER, EXTERNAL_MEMBER])

    assert dovecot.auth_ok(USER, PASSWORD)
    assert dovecot.auth_ok(USER, PASSWORD, service="smtp")
    assert dovecot.auth_ok(USER_SHADOW_ADDRESS, PASSWORD)  # enabledService shadowaddress
    assert not dovecot.auth_ok(USER, PASSWORD + "x")
    assert not dovecot.auth_ok(f"nobody@{DOMAIN}", PASSWORD)

    fields = dovecot.user(USER)
    assert fields["user"] == USER
    assert fields["home"] == HOME
    assert fields["mail"] == "maildir:~/Maildir/"
    assert fields["quota_rule"] == f"*:bytes={QUOTA_BYTES}"
    assert dovecot.user(f"nobody@{DOMAIN}") is None


def test_disabled_accounts_stop_resolving(mailstack, planted_domain, root_connection):
    postfix, dovecot = mailstack.postfix, mailstack.dovecot
    entries = planted_domain
    domain_dn = next(iter(entries))
    user_dn = next(dn for dn in entries if dn.startswith(f"mail={USER},"))
    assert dovecot.auth_ok(USER, PASSWORD)

    ldap_ok(root_connection.modify(user_dn, {"accountStatus": [(ldap3.MODIFY_REPLACE, ["disabled"])]}),
            "disable user")
    assert not dovecot.auth_ok(USER, PASSWORD)
    assert dovecot.user(USER) is None
    assert postfix.lookup("virtual_mailbox_maps", USER) == []
    assert postfix.lookup("sender_login_maps", USER) == []

    ldap_ok(root_connection.modify(user_dn, {"accountStatus": [(ldap3.MODIFY_REPLACE, ["active"])]}),
            "enable user")
    assert dovecot.auth_ok(USER, PASSWORD)

    # Disabling a domain, as iRedAdmin does: the domain's status, plus domainStatus on every account.
    ldap_ok(root_connection.modify(domain_dn, {"accountStatus": [(ldap3.MODIFY_REPLACE, ["disabled"])]}),
            "disable domain")
    for dn, attributes in entries.items():
        if {"mailUser", "mailAlias", "mailList", "mailExternalUser"} & set(attributes["objectClass"]):
            ldap_ok(root_connection.modify(dn, {"domainStatus": [(ldap3.MODIFY_ADD, ["disabled"])]}),
                    f"domainStatus on {dn}")
    assert not dovecot.auth_ok(USER, PASSWORD)
    assert dovecot.user(USER) is None
    assert postfix.lookup("virtual_mailbox_domains", DOMAIN) == []
    assert postfix.lookup("virtual_mailbox_maps", USER) == []
    assert postfix.lookup("virtual_alias_maps", ALIAS) == []
    assert postfix.lookup("virtual_group_maps", LIST) == []

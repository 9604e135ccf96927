"""Test fixtures: one real slapd with the iRedMail schema for the whole run.

slapd is started with python-ldap's slapdtest, configured by our own
``config_ldif`` (the same the run command uses), then set up through the very
functions an admin runs: ``install_schema`` (with the unique overlay, which needs the
rootDN slapdtest configures) and ``bootstrap_tree`` over ldapi.
"""

import os
import shutil
import tempfile
from dataclasses import dataclass

import pytest

from iredapi_ldap.directory import setup as directory_setup
from iredapi_ldap.directory.setup import open_external
from iredapi_ldap.localslapd import SYSTEM_SCHEMAS, config_ldif, peercred_dn
from iredapi_ldap.settings import build_settings

pytest_plugins = ["tests.mailstack.fixtures", "tests.sql_backends", "tests.mlmmjadmin_peer", "tests.iredapd_peer"]

SUFFIX = "dc=example,dc=com"
VMAIL_PASSWORD = "vmail-Secret-1"
VMAILADMIN_PASSWORD = "vmailadmin-Secret-1"
GLOBAL_ADMIN = "root@example.com"
GLOBAL_ADMIN_PASSWORD = "Admin-Secret-1!"


def _ssha(password):
    import base64
    import hashlib

    salt = os.urandom(8)
    return "{SSHA}" + base64.b64encode(hashlib.sha1(password.encode() + salt).digest() + salt).decode()


@dataclass
class LdapServer:
    """What tests need to know about the running test slapd."""

    ldap_uri: str
    ldapi_uri: str
    suffix: str
    vmail_dn: str
    vmail_password: str
    vmailadmin_dn: str
    vmailadmin_password: str
    basedn: str
    admin_basedn: str
    ca_file: str  # the CA that signed the test slapd's certificate
    slapd: object  # the slapdtest object (restart(), terminate(), resume())


@pytest.fixture(scope="session")
def ldap_server():
    if shutil.which("slapd", path=os.environ.get("PATH", "") + ":/usr/sbin") is None:
        pytest.fail("slapd is not installed: run `bash .ci/run` or `apt-get install slapd ldap-utils`")
    import slapdtest

    rundir = tempfile.mkdtemp(prefix="iredapi-t", dir="/tmp")  # short: ldapi paths are limited

    class IredmailSlapd(slapdtest.SlapdObject):
        suffix = SUFFIX
        root_cn = "Manager"
        slapd_loglevel = "0"
        openldap_schema_files = SYSTEM_SCHEMAS
        TMPDIR = rundir

        def gen_config(self):
            # slapdtest's own test certificates (for localhost and 127.0.0.1) allow StartTLS tests.
            return config_ldif(self.suffix, self._db_directory, root_dn=self.root_dn, root_pw=self.root_pw,
                               tls=(self.servercert, self.serverkey))

    slapd = IredmailSlapd()
    slapd.start()
    settings = base_settings(slapd.ldap_uri.rstrip("/"))
    conn = open_external(slapd.ldapi_uri)
    try:
        directory_setup.install_schema(conn, SUFFIX, basedn=f"o=domains,{SUFFIX}")
        directory_setup.bootstrap_tree(
            conn, settings,
            vmail_password_hash=_ssha(VMAIL_PASSWORD),
            vmailadmin_password_hash=_ssha(VMAILADMIN_PASSWORD),
            admin_mail=GLOBAL_ADMIN, admin_password_hash=_ssha(GLOBAL_ADMIN_PASSWORD),
            manager_identities=[peercred_dn()],
        )
    finally:
        conn.unbind()
    yield LdapServer(
        ldap_uri=slapd.ldap_uri.rstrip("/"), ldapi_uri=slapd.ldapi_uri, suffix=SUFFIX,
        vmail_dn=f"cn=vmail,{SUFFIX}", vmail_password=VMAIL_PASSWORD,
        vmailadmin_dn=f"cn=vmailadmin,{SUFFIX}", vmailadmin_password=VMAILADMIN_PASSWORD,
        basedn=f"o=domains,{SUFFIX}", admin_basedn=f"o=domainAdmins,{SUFFIX}", ca_file=slapd.cafile, slapd=slapd,
    )
    slapd.stop()
    shutil.rmtree(rundir, ignore_errors=True)


def base_settings(ldap_uri, **overrides):
    values = {
        "ldap_uri": ldap_uri,
        "ldap_basedn": f"o=domains,{SUFFIX}",
        "ldap_domainadmin_dn": f"o=domainAdmins,{SUFFIX}",
        "ldap_bind_dn": f"cn=vmailadmin,{SUFFIX}",
        "ldap_bind_password": VMAILADMIN_PASSWORD,
        "ENABLE_RESTFUL_API": True,
        # No mlmmjadmin unless a test starts one (tests/mlmmjadmin_peer.py): the session's slapd may
        # hold mlmmj lists of other tests, and deleting a user would ask mlmmjadmin about them.
        "MLMMJADMIN_API_BASE_URL": "",
    }
    values.update(overrides)
    return build_settings(values)


@pytest.fixture
def root_connection(ldap_server):
    """A python-ldap-free raw ldap3 connection with manage rights (SASL EXTERNAL),
    for tests that look at or plant entries behind the API's back."""
    conn = open_external(ldap_server.ldapi_uri)
    yield conn
    conn.unbind()


# -- the API under test -----------------------------------------------------------

class ApiClient:
    """falcon's TestClient with a cookie jar, speaking form bodies like curl -d."""

    def __init__(self, app, remote_addr="127.0.0.1"):
        import falcon.testing

        self.app = app
        self.client = falcon.testing.TestClient(app)
        self.cookies = {}
        self.remote_addr = remote_addr

    def request(self, method, path, form=None, json=None, params=None, headers=None, body=None):
        from urllib.parse import urlencode

        kwargs = {"headers": dict(headers or {}), "remote_addr": self.remote_addr, "params": params}
        if self.cookies:
            kwargs["headers"]["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if form is not None:
            kwargs["body"] = urlencode(form)
            kwargs["headers"].setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif json is not None:
            kwargs["json"] = json
        elif body is not None:
            kwargs["body"] = body
        result = self.client.simulate_request(method, path, **kwargs)
        for name, cookie in result.cookies.items():
            if cookie.value:
                self.cookies[name] = cookie.value
            else:
                self.cookies.pop(name, None)
        return result

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, form=None, **kw):
        return self.request("POST", path, form=form, **kw)

    def put(self, path, form=None, **kw):
        return self.request("PUT", path, form=form, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def login(self, username=GLOBAL_ADMIN, password=GLOBAL_ADMIN_PASSWORD):
        result = self.post("/api/login", {"username": username, "password": password})
        assert result.status_code == 200, result.text
        return self


@pytest.fixture
def make_app(ldap_server, tmp_path):
    """make_app(**setting overrides) -> a new app on the test slapd and a fresh SQLite store."""
    from iredapi_ldap.app import create_app

    apps = []

    def make(**overrides):
        overrides.setdefault("DATA_DIR", str(tmp_path))
        overrides.setdefault("LOGIN_MAX_FAILURES", 0)
        app = create_app(base_settings(overrides.pop("ldap_uri", ldap_server.ldap_uri), **overrides))
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.services.directory.client.close()


@pytest.fixture
def api(make_app):
    """A client logged in as the global admin."""
    return ApiClient(make_app()).login()


@pytest.fixture
def anonymous(make_app):
    return ApiClient(make_app())


_counter = iter(range(1, 10**9))


@pytest.fixture
def new_domain():
    """A fresh, unused domain name per call (the slapd is shared by all tests)."""
    import uuid

    def make():
        return f"d{next(_counter)}-{uuid.uuid4().hex[:8]}.test"

    return make


def read_entry(conn, dn, attributes=("*",)):
    """{attribute: [values]} of ``dn`` read behind the API's back, or None."""
    import ldap3

    status, result, response, _ = conn.search(dn, "(objectClass=*)", search_scope=ldap3.BASE,
                                              attributes=list(attributes))
    if result["result"] == 32:
        return None
    assert result["result"] == 0, result
    entry = response[0]
    return {k: [v.decode() if isinstance(v, bytes) else str(v) for v in vals]
            for k, vals in entry["raw_attributes"].items()}


def count_entries(conn, base, filter_="(objectClass=*)"):
    import ldap3

    status, result, response, _ = conn.search(base, filter_, search_scope=ldap3.SUBTREE, attributes=["1.1"])
    if result["result"] == 32:
        return 0
    return len([r for r in response if r.get("type") == "searchResEntry"])


def failed(code, **extra):
    """The error envelope of the default ("both") dialect: both flags, both messages."""
    return {"_success": False, "success": False, "_msg": code, "msg": code, **extra}


# -- DNs of the test tree, as iRedMail names them -----------------------------------------------

def domain_dn(domain):
    return f"domainName={domain},o=domains,{SUFFIX}"


def account_dn(mail, ou="Users"):
    return f"mail={mail},ou={ou},{domain_dn(mail.split('@')[1])}"


def user_dn(mail):
    return account_dn(mail, "Users")


def alias_dn(mail):
    return account_dn(mail, "Aliases")


def list_dn(mail):
    return account_dn(mail, "Groups")


def externals_dn(list_mail):
    return f"memberOfGroup={list_mail},ou=Externals,{domain_dn(list_mail.split('@')[1])}"

"""Loading settings: the settings.py file, IREDAPI_<NAME> overrides, validation, the CLI."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from iredapi_ldap.settings import DEFAULTS, SettingsError, build_settings, load_settings, sql_url

PROJECT_DIR = Path(__file__).resolve().parents[1]


def write(tmp_path, text, name="settings.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_an_iredadmin_style_file_keeps_its_meaning(tmp_path):
    path = write(tmp_path, """\
        # iRedAdmin-style settings: plain assignments with iRedAdmin's names.
        ldap_uri = "ldaps://ldap.example.org:636"
        ldap_basedn = "o=domains,dc=example,dc=org"
        ldap_domainadmin_dn = "o=domainAdmins,dc=example,dc=org"
        ldap_bind_dn = "cn=vmailadmin,dc=example,dc=org"
        ldap_bind_password = "s3cret"
        storage_base_directory = "/srv/vmail/vmail2"
        default_mta_transport = "lmtp:unix:private/dovecot-lmtp"
        min_passwd_length = 12
        DEFAULT_PASSWORD_SCHEME = "BCRYPT"
        ENABLE_RESTFUL_API = True
        RESTRICT_API_ACCESS = True
        RESTFUL_API_CLIENTS = ["172.16.244.1", "10.0.0.0/8", "2001:db8::/32"]
        SESSION_TIMEOUT = 900
        """)
    settings = load_settings(path, environ={})
    assert settings.ldap_uri == "ldaps://ldap.example.org:636"
    assert settings.ldap_suffix == "dc=example,dc=org"
    assert settings.ldap_bind_password == "s3cret"
    assert settings.storage_base_directory == "/srv/vmail/vmail2"
    assert settings.default_mta_transport == "lmtp:unix:private/dovecot-lmtp"
    assert settings.min_passwd_length == 12
    assert settings.DEFAULT_PASSWORD_SCHEME == "BCRYPT"
    assert settings.ENABLE_RESTFUL_API is True and settings.RESTRICT_API_ACCESS is True
    assert [str(n) for n in settings.api_networks] == ["172.16.244.1/32", "10.0.0.0/8", "2001:db8::/32"]
    assert settings.SESSION_TIMEOUT == 900
    # what the file does not set keeps its safe default
    assert settings.LOGIN_MAX_FAILURES == DEFAULTS["LOGIN_MAX_FAILURES"]
    assert settings.API_ENVELOPE == "both"


def test_no_file_means_safe_defaults(tmp_path):
    settings = load_settings(environ={})
    assert settings.values == DEFAULTS
    assert settings.ENABLE_RESTFUL_API is False  # the API is off until an admin turns it on


def test_imports_and_helper_functions_in_the_file_are_ignored(tmp_path):
    path = write(tmp_path, """\
        import os
        import os.path as osp
        from os import path, getenv, environ
        from os.path import join
        from functools import partial
        from datetime import timedelta

        def _private():
            return 1

        def helper(name):
            return join("/var/lib", name)

        class Helper:
            pass

        fallback = partial(getenv, "NOT_SET")
        DATA_DIR = helper("iredapi-test")
        ldap_bind_password = environ.get("NO_SUCH_VARIABLE_HOPEFULLY", "from-default")
        SESSION_TIMEOUT = int(timedelta(minutes=5).total_seconds())
        _scratch = "private names are ignored too"
        """)
    settings = load_settings(path, environ={})
    assert settings.DATA_DIR == "/var/lib/iredapi-test"
    assert settings.ldap_bind_password == "from-default"
    assert settings.SESSION_TIMEOUT == 300


def test_an_unknown_setting_is_named(tmp_path):
    # a typo must not be silently ignored: the API would stay off, or open
    path = write(tmp_path, "ENABLE_RESTFUL_API = True\nRESTRICT_API_ACESS = True\n")
    with pytest.raises(SettingsError, match="RESTRICT_API_ACESS"):
        load_settings(path, environ={})
    with pytest.raises(SettingsError, match="bogus"):
        build_settings({"bogus": 1})


@pytest.mark.parametrize("name,value", [
    ("ENABLE_RESTFUL_API", "yes"),
    ("ENABLE_RESTFUL_API", 1),
    ("RESTRICT_API_ACCESS", None),
    ("ldap_timeout", "10"),
    ("ldap_timeout", 2.5),
    ("SESSION_TIMEOUT", True),
    ("ldap_uri", 389),
    ("RESTFUL_API_CLIENTS", "192.0.2.1"),  # a bare string would be iterated character by character
    ("RESTFUL_API_CLIENTS", [192]),
    ("TRUSTED_PROXIES", {"10.0.0.1": 1}),
    ("iredadmin_db_url", 5),
])
def test_a_value_of_the_wrong_type_is_named(name, value):
    with pytest.raises(SettingsError, match=name):
        build_settings({name: value})


@pytest.mark.parametrize("name,value", [
    ("RESTFUL_API_CLIENTS", ["10.0.0.0/33"]),
    ("RESTFUL_API_CLIENTS", ["192.0.2.1", "not-an-ip"]),
    ("RESTFUL_API_CLIENTS", [""]),  # an empty entry must never widen access
    ("RESTFUL_API_CLIENTS", ["   "]),
    ("RESTFUL_API_CLIENTS", ["300.1.1.1"]),
    ("TRUSTED_PROXIES", ["10.0.0.1", ""]),
    ("TRUSTED_PROXIES", ["fe80::1/129"]),
    ("ldap_uri", "http://127.0.0.1:389"),
    ("ldap_uri", "127.0.0.1:389"),
    ("ldap_timeout", -1),
    ("ldap_timeout", 0),  # 0 would be no timeout: a hung slapd would hold a thread for ever
    ("SQL_TIMEOUT", -5),
    ("SQL_TIMEOUT", 0),  # the SQL engine refuses 0
    ("SESSION_TIMEOUT", -1),
    ("SESSION_RECHECK_INTERVAL", -1),
    ("LOGIN_MAX_FAILURES", -3),
    ("LOGIN_FAILURE_WINDOW", -1),
    ("API_ENVELOPE", "xml"),
    ("API_ENVELOPE", "PRO"),
    ("LOG_LEVEL", "chatty"),
    ("ldap_basedn", "domains"),
    ("storage_base_directory", "var/vmail"),
    ("DEFAULT_PASSWORD_SCHEME", "ssha512"),
])
def test_a_malformed_value_is_named(name, value):
    with pytest.raises(SettingsError, match=name):
        build_settings({name: value})


def test_starttls_with_ldaps_is_refused():
    with pytest.raises(SettingsError, match="ldap_starttls"):
        build_settings({"ldap_uri": "ldaps://ldap.example.com", "ldap_starttls": True})
    assert build_settings({"ldap_uri": "ldap://ldap.example.com", "ldap_starttls": True}).ldap_starttls is True


def test_network_entries_are_read_as_networks():
    settings = build_settings({"RESTFUL_API_CLIENTS": [" 192.0.2.7 ", "10.1.2.3/8"],
                               "TRUSTED_PROXIES": ["2001:db8::1"]})
    # whitespace around an entry is harmless, a host part in a CIDR is masked off
    assert [str(n) for n in settings.api_networks] == ["192.0.2.7/32", "10.0.0.0/8"]
    assert [str(n) for n in settings.proxy_networks] == ["2001:db8::1/128"]


def test_a_file_that_fails_to_load_is_reported(tmp_path):
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "missing.py", environ={})
    broken = write(tmp_path, "ENABLE_RESTFUL_API = (\n")
    with pytest.raises(SettingsError, match="failed to load"):
        load_settings(broken, environ={})
    failing_import = write(tmp_path, "import no_such_module_here\n", name="imp.py")
    with pytest.raises(SettingsError, match="no_such_module_here"):
        load_settings(failing_import, environ={})


def test_the_settings_path_comes_from_iredapi_settings(tmp_path):
    path = write(tmp_path, "ENABLE_RESTFUL_API = True\nSESSION_TIMEOUT = 77\n")
    settings = load_settings(environ={"IREDAPI_SETTINGS": str(path)})
    assert settings.ENABLE_RESTFUL_API is True and settings.SESSION_TIMEOUT == 77
    # an explicit path wins over the variable
    other = write(tmp_path, "SESSION_TIMEOUT = 88\n", name="other.py")
    assert load_settings(other, environ={"IREDAPI_SETTINGS": str(path)}).SESSION_TIMEOUT == 88
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(environ={"IREDAPI_SETTINGS": str(tmp_path / "gone.py")})


def test_environment_overrides_the_file(tmp_path):
    path = write(tmp_path, "ENABLE_RESTFUL_API = False\nldap_timeout = 3\nSESSION_COOKIE_NAME = 'file'\n")
    settings = load_settings(path, environ={
        "IREDAPI_ENABLE_RESTFUL_API": "yes",
        "IREDAPI_RESTRICT_API_ACCESS": "On",
        "IREDAPI_ldap_starttls": "0",
        "IREDAPI_ldap_timeout": " 7 ",
        "IREDAPI_RESTFUL_API_CLIENTS": "192.0.2.1, 10.0.0.0/8,,",
        "IREDAPI_TRUSTED_PROXIES": "",
        "IREDAPI_SESSION_COOKIE_NAME": "from-env",
        "IREDAPI_iredadmin_db_url": "sqlite:////tmp/x.sqlite",
    })
    assert settings.ENABLE_RESTFUL_API is True
    assert settings.RESTRICT_API_ACCESS is True
    assert settings.ldap_starttls is False
    assert settings.ldap_timeout == 7
    assert settings.RESTFUL_API_CLIENTS == ["192.0.2.1", "10.0.0.0/8"]
    assert settings.TRUSTED_PROXIES == []
    assert settings.SESSION_COOKIE_NAME == "from-env"
    assert settings.iredadmin_db_url == "sqlite:////tmp/x.sqlite"


@pytest.mark.parametrize("name,text", [
    ("ENABLE_RESTFUL_API", "maybe"),
    ("ENABLE_RESTFUL_API", ""),
    ("ldap_timeout", "ten"),
    ("ldap_timeout", "1.5"),
    ("ldap_timeout", "-2"),
    ("LOGIN_MAX_FAILURES", ""),
    ("RESTFUL_API_CLIENTS", "192.0.2.1,example.com"),
    ("API_ENVELOPE", "json"),
    ("ldap_uri", "ldapx://host"),
])
def test_a_bad_environment_value_is_named(name, text):
    with pytest.raises(SettingsError, match=name):
        load_settings(environ={"IREDAPI_" + name: text})


def test_replace_validates_too():
    settings = build_settings({"ENABLE_RESTFUL_API": True})
    assert settings.replace(SESSION_TIMEOUT=5).SESSION_TIMEOUT == 5
    assert settings.replace(SESSION_TIMEOUT=5).ENABLE_RESTFUL_API is True
    with pytest.raises(SettingsError, match="RESTFUL_API_CLIENTS"):
        settings.replace(RESTFUL_API_CLIENTS=["nope"])
    assert settings.SESSION_TIMEOUT == DEFAULTS["SESSION_TIMEOUT"]  # the original is unchanged


def _cli(*args, env_extra=None, cwd=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("IREDAPI_")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "iredapi_ldap.cli", *args], capture_output=True, text=True,
                          env=env, cwd=cwd or PROJECT_DIR, timeout=60)


def test_cli_serve_with_a_bad_setting_exits_2_naming_it(tmp_path):
    # load fails before gunicorn is exec'd, so no server starts here
    bad = write(tmp_path, "ENABLE_RESTFUL_API = True\nRESTFUL_API_CLIENTS = ['10.0.0.0/40']\n", name="bad.py")
    result = _cli("--config", str(bad), "serve")
    assert result.returncode == 2, result.stderr
    assert "RESTFUL_API_CLIENTS" in result.stderr and "10.0.0.0/40" in result.stderr
    assert "Traceback" not in result.stderr
    result = _cli("--config", str(bad), "serve", "--", "--bind", "127.0.0.1:1")
    assert result.returncode == 2 and "RESTFUL_API_CLIENTS" in result.stderr
    typo = write(tmp_path, "ENABLE_RESTFUL_APi = True\n", name="typo.py")
    result = _cli("--config", str(typo), "serve")
    assert result.returncode == 2 and "ENABLE_RESTFUL_APi" in result.stderr


def test_cli_reads_iredapi_settings_and_env_overrides(tmp_path):
    good = write(tmp_path, "ENABLE_RESTFUL_API = True\n")
    result = _cli("sql-setup", env_extra={"IREDAPI_SETTINGS": str(good), "IREDAPI_SQL_TIMEOUT": "soon"})
    assert result.returncode == 2 and "SQL_TIMEOUT" in result.stderr
    result = _cli("sql-setup", env_extra={"IREDAPI_SETTINGS": str(good), "IREDAPI_DATA_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "iredadmin.sqlite").exists()


def test_sql_url_prefers_the_url_then_the_host_then_sqlite(tmp_path):
    settings = build_settings({"DATA_DIR": str(tmp_path)})
    assert sql_url(settings, "iredadmin") == f"sqlite:///{tmp_path}/iredadmin.sqlite"
    assert sql_url(settings, "iredapd") == f"sqlite:///{tmp_path}/iredapd.sqlite"

    on_host = settings.replace(iredadmin_db_host="db.example.com", iredadmin_db_port=3307,
                               iredadmin_db_user="ira", iredadmin_db_password="p@ss:w/rd")
    url = sql_url(on_host, "iredadmin")
    assert url.startswith("mysql+pymysql://ira:")
    assert url.endswith("@db.example.com:3307/iredadmin")
    import sqlalchemy as sa

    parsed = sa.make_url(url)
    assert parsed.password == "p@ss:w/rd"  # special characters survive the round trip
    assert parsed.host == "db.example.com" and parsed.database == "iredadmin"
    assert sql_url(on_host, "iredapd").startswith("sqlite:///")  # each store has its own settings

    with_url = on_host.replace(iredadmin_db_url="postgresql://u@pg/iredadmin")
    assert sql_url(with_url, "iredadmin") == "postgresql://u@pg/iredadmin"

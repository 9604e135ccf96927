"""pytest fixture ``mailstack``: Postfix lookups and a Dovecot auth server on the test slapd.

Loaded from tests/conftest.py with ``pytest_plugins = ["tests.mailstack.fixtures"]``.
"""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.mailstack import Dovecot, LdapTarget, MailStack, Postfix, missing_parts

INSTALL_HINT = ("apt-get install postfix postfix-ldap dovecot-core dovecot-ldap; "
                "CI installs them, so with CI set this is a failure, not a skip")


@pytest.fixture(scope="session")
def mailstack(ldap_server):
    """``.postfix.lookup(map_name, key)``, ``.dovecot.auth_ok(user, password)``, ``.dovecot.user(user)``,
    all binding as cn=vmail to the session's test slapd.  Dovecot runs for the whole session."""
    missing = missing_parts()
    if missing:
        reason = f"mail stack not installed ({', '.join(missing)}): {INSTALL_HINT}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    ldap = LdapTarget(server_uri=ldap_server.ldap_uri, basedn=ldap_server.basedn,
                      bind_dn=ldap_server.vmail_dn, bind_password=ldap_server.vmail_password)
    # Short path under /tmp: Dovecot's unix sockets live here (108-byte limit), and its
    # unprivileged auth process must be able to traverse it.
    directory = Path(tempfile.mkdtemp(prefix="iredapi-mail", dir="/tmp"))
    directory.chmod(0o755)
    try:
        postfix = Postfix(directory / "postfix", ldap)
        dovecot = Dovecot(directory / "dovecot", ldap).start()
        try:
            yield MailStack(postfix=postfix, dovecot=dovecot)
        finally:
            dovecot.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)

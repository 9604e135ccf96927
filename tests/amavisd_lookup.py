"""Amavisd's own per-recipient policy lookup, run against a database as Amavisd runs it.

The SELECT is read at test time from Amavisd itself (``$sql_select_policy`` in Amavis/Conf.pm of
Debian's amavisd-new package: installed, or fetched with ``apt-get download`` and unpacked, never
installed); the lookup keys are built as Amavisd's make_query_keys builds them for a recipient, and
each field is taken from the first row (by users.priority) where it is not NULL, as
lookup_sql_field does (README.lookups).
"""

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import sqlalchemy as sa

from tests.sql_backends import skip_unless_required

CONF_PM = "usr/share/perl5/Amavis/Conf.pm"
_CACHE = Path("/tmp/iredapi-amavisd-package-root")


def _conf_pm():
    for root in (os.environ.get("IREDAPI_TEST_AMAVISD_ROOT"), "/", str(_CACHE)):
        if root and (Path(root) / CONF_PM).is_file():
            return Path(root) / CONF_PM
    # Fetched into a private folder, then renamed into place: pytest-xdist workers may race here.
    work = Path(tempfile.mkdtemp(prefix="iredapi-amavisd-download-"))
    try:
        subprocess.run(["apt-get", "download", "amavisd-new"], cwd=work, check=True, capture_output=True,
                       timeout=120)
        deb = sorted(work.glob("amavisd-new_*.deb"))[-1]
        subprocess.run(["dpkg-deb", "-x", str(deb), str(work / "root")], check=True, capture_output=True,
                       timeout=120)
        with contextlib.suppress(OSError):  # another worker was first: use its copy
            os.rename(work / "root", _CACHE)
    except (OSError, subprocess.SubprocessError, IndexError) as exc:
        skip_unless_required(f"Amavisd's package (amavisd-new) not available: {exc}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _CACHE / CONF_PM


def policy_select():
    """Amavisd's default ``$sql_select_policy``, the Perl string concatenation joined."""
    text = _conf_pm().read_text(errors="replace")
    match = re.search(r"\$sql_select_policy\s*=\s*((?:'[^']*'\s*\.?\s*)+);", text)
    assert match, "no $sql_select_policy in Amavis/Conf.pm"
    return "".join(re.findall(r"'([^']*)'", match.group(1)))


def query_keys(address):
    """make_query_keys($addr, 0, 1) for a local recipient without address extension:
    user@sub.example.com, user, @sub.example.com, @.sub.example.com, @.example.com, @.com, @."""
    local, domain = address.lower().rsplit("@", 1)
    keys = [address, f"{local}@{domain}", local, "@" + domain]
    labels = domain
    while True:
        keys.append("@." + labels)
        if not labels:
            break
        labels = labels.split(".", 1)[1] if "." in labels else ""
    return list(dict.fromkeys(keys))


def lookup_rows(conn, address):
    """The rows Amavisd's policy SELECT returns for ``address``, as Amavisd's field hashes (later
    columns of the same name win, hence its trailing users.id)."""
    keys = query_keys(address)
    sql = policy_select().replace("%k", ", ".join(f":k{i}" for i in range(len(keys))))
    result = conn.execute(sa.text(sql), {f"k{i}": key for i, key in enumerate(keys)})
    names = list(result.keys())
    return [dict(zip(names, row, strict=True)) for row in result]


def field(conn, address, name):
    """lookup_sql_field: the first non-NULL value of ``name`` among the matching rows."""
    for row in lookup_rows(conn, address):
        if row.get(name) is not None:
            return row[name]
    return None

"""contrib/systemd: the timer and service that run `iredapi-ldap recount` periodically
(issue 10, item 16).  The service's command is run here as written, against the test slapd,
and systemd checks both files when its `systemd-analyze` is installed."""

import configparser
import getpass
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import ldap3
import pytest

from iredapi_ldap.cli import main
from tests.conftest import SUFFIX, read_entry
from tests.test_cli_recount import _settings_file

PROJECT_DIR = Path(__file__).resolve().parents[1]
UNITS = PROJECT_DIR / "contrib" / "systemd"
SERVICE, TIMER = "iredapi-ldap-recount.service", "iredapi-ldap-recount.timer"


def unit(name):
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # systemd's keys are case-sensitive
    parser.read(UNITS / name)
    return parser


def console_scripts():
    setup = configparser.ConfigParser()
    setup.read(PROJECT_DIR / "setup.cfg")
    return {line.split("=")[0].strip() for line in setup["options.entry_points"]["console_scripts"].splitlines()
            if line.strip()}


def test_the_timer_starts_the_service_daily():
    timer = unit(TIMER)
    assert timer["Timer"].get("Unit", SERVICE) == SERVICE and (UNITS / SERVICE).exists()
    assert timer["Timer"]["OnCalendar"] and timer["Timer"]["Persistent"] == "yes"
    assert timer["Install"]["WantedBy"] == "timers.target"
    assert unit(SERVICE)["Service"]["Type"] == "oneshot"


def test_the_service_command_recounts_every_domain(api, root_connection, new_domain, ldap_server, tmp_path,
                                                   capsys):
    command = shlex.split(unit(SERVICE)["Service"]["ExecStart"])
    assert Path(command[0]).name in console_scripts()
    arguments = command[1:]
    assert arguments[arguments.index("--config") + 1] == "/etc/iredapi-ldap/settings.py"
    arguments[arguments.index("--config") + 1] = str(_settings_file(ldap_server, tmp_path))
    assert arguments[arguments.index("recount") + 1:] == ["--settle", "2"]  # no domains: every domain
    arguments[-1] = "0"  # the shared test slapd has many domains whose counters tests left off on purpose

    domain = new_domain()
    api.post(f"/api/domain/{domain}")
    api.post(f"/api/user/u@{domain}", {"password": "Secret-pw1!", "mailQuota": "3"})
    dn = f"domainName={domain},o=domains,{SUFFIX}"
    # a 503 whose write was carried out later: one user more than the counter says
    root_connection.modify(dn, {"domainCurrentUserNumber": [(ldap3.MODIFY_REPLACE, ["0"])]})
    assert main(arguments) == 0
    assert f"{domain}: 1 users" in capsys.readouterr().out
    assert read_entry(root_connection, dn)["domainCurrentUserNumber"] == ["1"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_units(tmp_path):
    program = Path(sys.executable).parent / "iredapi-ldap"
    assert program.exists(), "pip install -e . installs the console script"
    service = (UNITS / SERVICE).read_text()
    service = service.replace("/opt/iredapi-ldap/.venv/bin/iredapi-ldap", str(program))
    service = service.replace("User=iredapi", f"User={getpass.getuser()}")
    (tmp_path / SERVICE).write_text(service)
    shutil.copy(UNITS / TIMER, tmp_path / TIMER)
    result = subprocess.run(["systemd-analyze", "verify", str(tmp_path / SERVICE), str(tmp_path / TIMER)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "iredapi-ldap-recount" not in result.stderr, result.stderr

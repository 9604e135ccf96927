"""How the API reaches slapd: ldap://, ldapi://, StartTLS with certificate checks, outages."""

import glob
import os
import signal
import time

import pytest

from iredapi_ldap.directory.connection import libldap_uri
from tests.conftest import ApiClient


def _works(app, domain):
    client = ApiClient(app).login()
    result = client.post(f"/api/domain/{domain}")
    return result.status_code, result.json


def test_ldapi(make_app, ldap_server, new_domain):
    assert _works(make_app(ldap_uri=ldap_server.ldapi_uri), new_domain()) == (201, {"_success": True, "success": True})


def test_starttls_with_the_right_ca(make_app, ldap_server, new_domain):
    app = make_app(ldap_starttls=True, ldap_tls_ca_file=ldap_server.ca_file)
    assert _works(app, new_domain()) == (201, {"_success": True, "success": True})


def test_starttls_verifies_the_certificate_by_default(make_app, new_domain):
    # The test slapd's certificate is signed by slapdtest's own CA, which the system does not trust.
    client = ApiClient(make_app(ldap_starttls=True))
    result = client.post("/api/login", {"username": "root@example.com", "password": "Admin-Secret-1!"})
    assert result.status_code == 503 and result.json["msg"] == "SERVER_DOWN"


@pytest.mark.parametrize("password", ["wrong-password", ""])
def test_wrong_service_password_is_503_not_500(make_app, password):
    client = ApiClient(make_app(ldap_bind_password=password or "x"))
    result = client.post("/api/login", {"username": "root@example.com", "password": "Admin-Secret-1!"})
    assert result.status_code == 503 and result.json["msg"] == "SERVER_DOWN"


def test_reconnects_after_slapd_restarts(make_app, ldap_server, new_domain):
    client = ApiClient(make_app()).login()
    assert client.get("/api/domains").status_code == 200
    ldap_server.slapd.restart()
    domain = new_domain()
    assert client.post(f"/api/domain/{domain}").status_code == 201


def _thread_states(pid):
    states = []
    for path in glob.glob(f"/proc/{pid}/task/*/stat"):
        try:
            with open(path) as stat:
                states.append(stat.read().rsplit(")", 1)[1].split()[0])  # "tid (comm) state ..."
        except FileNotFoundError:  # the thread ended meanwhile
            pass
    return states


def signal_and_wait(pid, signum):
    """Send SIGSTOP or SIGCONT and return once every thread of ``pid`` is stopped or running.

    kill() returns before the signal takes effect: one thread is woken to start the group stop,
    and on a busy machine (pytest -n 2) it can wait for a CPU while slapd's other threads go on
    answering, and the request that should time out was answered (200, in about 1 run in 5).
    """
    os.kill(pid, signum)
    stopped = signum == signal.SIGSTOP
    deadline = time.monotonic() + 10
    while True:
        states = _thread_states(pid)
        if states and all((state == "T") == stopped for state in states):
            return
        assert time.monotonic() < deadline, f"slapd's threads did not {'stop' if stopped else 'resume'}: {states}"
        time.sleep(0.001)


def test_a_hung_slapd_is_503_within_the_timeout_and_the_next_request_reconnects(make_app, ldap_server, new_domain):
    domain = new_domain()
    client = ApiClient(make_app(ldap_timeout=1)).login()
    assert client.post(f"/api/domain/{domain}").status_code == 201
    try:
        signal_and_wait(ldap_server.slapd._proc.pid, signal.SIGSTOP)
        started = time.monotonic()
        result = client.get(f"/api/domain/{domain}")
        waited = time.monotonic() - started
    finally:
        signal_and_wait(ldap_server.slapd._proc.pid, signal.SIGCONT)
    assert (result.status_code, result.json["msg"]) == (503, "SERVER_DOWN")
    assert 0.9 <= waited < 3  # one timeout, not one per retry
    # The answer slapd sends once it runs again must not be taken for the next request's.
    result = client.get(f"/api/domain/{domain}")
    assert result.status_code == 200 and result.json["_data"]["domainName"] == [domain]


def test_paged_search_walks_every_page_one_round_trip_each(make_app, ldap_server, root_connection, new_domain):
    domain = new_domain()
    client = ApiClient(make_app()).login()
    assert client.post(f"/api/domain/{domain}").status_code == 201
    ldap = make_app().services.directory.client
    base = f"ou=Users,domainName={domain},{ldap_server.basedn}"
    for n in range(5):
        root_connection.add(f"mail=p{n}@{domain},{base}", ["inetOrgPerson"],
                            {"mail": f"p{n}@{domain}", "cn": "x", "sn": "x", "uid": f"p{n}"})
    ldap.reset_round_trips()
    found = [entry.first("mail") for entry in ldap.paged_search(base, "(mail=*)", ["mail"], scope="one",
                                                                  page_size=2)]
    assert sorted(found) == [f"p{n}@{domain}" for n in range(5)]
    assert ldap.round_trips == 3


def test_paged_search_of_a_missing_base_yields_nothing(make_app, ldap_server):
    ldap = make_app().services.directory.client
    assert list(ldap.paged_search(f"domainName=absent.test,{ldap_server.basedn}", "(objectClass=*)")) == []


@pytest.mark.parametrize(("configured", "used"), [
    ("ldap://127.0.0.1:389/", "ldap://127.0.0.1:389"),
    ("ldaps://ldap.example.com", "ldaps://ldap.example.com"),
    ("ldapi://%2Fvar%2Frun%2Fslapd%2Fldapi", "ldapi://%2Fvar%2Frun%2Fslapd%2Fldapi"),
    ("ldapi:///var/run/slapd/ldapi", "ldapi://%2Fvar%2Frun%2Fslapd%2Fldapi"),
    ("ldapi://", "ldapi://"),
])
def test_uris_are_given_to_libldap_in_its_own_form(configured, used):
    assert libldap_uri(configured) == used

"""Creates racing a domain's disable (and enable) on a real multi-worker gunicorn: afterwards
every account of the domain follows the domain's status (issue 10, item 9)."""

import json
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

from iredapi_ldap.localslapd import free_port
from tests.conftest import SUFFIX, count_entries, read_entry
from tests.test_gunicorn import COOKIE, gunicorn, login, request, wait_until_answering

ACCOUNTS = "(|(objectClass=mailUser)(objectClass=mailAlias)(objectClass=mailList))"
CREATES_PER_ROUND = 80
IN_FLIGHT = 16


def test_creates_racing_a_status_change_all_follow_it(ldap_server, tmp_path, root_connection, new_domain):
    port = free_port()
    with gunicorn(ldap_server, tmp_path, f"127.0.0.1:{port}", workers=3, threads=4) as (proc, _):
        wait_until_answering(port, proc, time.monotonic() + 20)
        token = login(port)

        def call(method, path, form=None):
            status, _, body = request(port, method, path, body=urlencode(form or {}), timeout=60, headers={
                "Cookie": f"{COOKIE}={token}", "Content-Type": "application/x-www-form-urlencoded"})
            return status, json.loads(body)

        domain = new_domain()
        domain_dn = f"domainName={domain},o=domains,{SUFFIX}"
        assert call("POST", f"/api/domain/{domain}")[0] == 201
        created = []

        def create(name):
            if len(created) % 2:
                result = call("POST", f"/api/alias/{name}@{domain}")
            else:
                result = call("POST", f"/api/user/{name}@{domain}", {"password": "Secret-pw1!"})
            created.append(name)
            return result

        stragglers = {}
        for number, change in enumerate(("disabled", "active", "disabled", "active")):
            with ThreadPoolExecutor(max_workers=IN_FLIGHT) as pool:
                futures = [pool.submit(create, f"r{number}-{i}") for i in range(CREATES_PER_ROUND)]
                deadline = time.monotonic() + 60
                while len(created) < number * CREATES_PER_ROUND + CREATES_PER_ROUND // 3:
                    assert time.monotonic() < deadline, "the creates do not get through"
                    time.sleep(0.005)
                status, body = call("PUT", f"/api/domain/{domain}", {"accountStatus": change})
                assert status == 200, body
                results = [future.result() for future in futures]
            assert [status for status, _ in results] == [201] * CREATES_PER_ROUND, results
            assert read_entry(root_connection, domain_dn)["accountStatus"] == [change]
            wrong = "(!(domainStatus=disabled))" if change == "disabled" else "(domainStatus=disabled)"
            stragglers[change + str(number)] = count_entries(root_connection, domain_dn, f"(&{ACCOUNTS}{wrong})")
        assert count_entries(root_connection, domain_dn, ACCOUNTS) == 4 * CREATES_PER_ROUND
        assert stragglers == {"disabled0": 0, "active1": 0, "disabled2": 0, "active3": 0}

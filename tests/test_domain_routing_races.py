"""A name is one domain's (its own or an alias domain), also when requests race for it through
two gunicorn workers: three domains ask for the same alias domain and a fourth request creates
a domain of that name, all at once; at most one of them ends up with the name."""

import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

from iredapi_ldap.localslapd import free_port
from tests.conftest import SUFFIX, count_entries
from tests.test_gunicorn import COOKIE, gunicorn, login, request, wait_until_answering


def test_racing_claims_of_one_name_leave_one_owner_at_most(ldap_server, root_connection, tmp_path, new_domain):
    port = free_port()
    basedn = f"o=domains,{SUFFIX}"
    with gunicorn(ldap_server, tmp_path, f"127.0.0.1:{port}", threads=4) as (proc, _):
        wait_until_answering(port, proc, time.monotonic() + 20)
        form = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"{COOKIE}={login(port)}"}
        owners = []
        for _ in range(8):
            name, domains = new_domain(), [new_domain() for _ in range(3)]
            for domain in domains:
                assert request(port, "POST", f"/api/domain/{domain}", "", form)[0] == 201

            def claim(i, name=name, domains=domains):
                if i == 3:
                    return request(port, "POST", f"/api/domain/{name}", "", form)[0]
                return request(port, "PUT", f"/api/domain/{domains[i]}", urlencode({"addAliasDomain": name}),
                               form)[0]

            with ThreadPoolExecutor(max_workers=4) as pool:
                statuses = list(pool.map(claim, range(4)))
            assert set(statuses) <= {200, 201, 409}, statuses
            holders = count_entries(root_connection, basedn,
                                    f"(&(objectClass=mailDomain)(|(domainName={name})(domainAliasName={name})))")
            winners = sum(status in (200, 201) for status in statuses)
            # the answers tell the truth: a 200/201 holds the name, a 409 does not
            assert holders == winners <= 1, statuses
            owners.append(winners)
        print(f"rounds with an owner: {sum(owners)} of {len(owners)}")

"""A normal admin's limits hold through real gunicorn workers (issue 14): an admin with
maxDomains=2 and maxUsers=3, racing 10 domain creates and then 10 user creates over two worker
processes, ends with exactly 2 domains and 3 users."""

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

from iredapi_ldap.localslapd import free_port
from tests.conftest import SUFFIX, count_entries, read_entry
from tests.test_gunicorn import COOKIE, gunicorn, login, request, wait_until_answering

PASSWORD = "Admin-Secret-2!"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def login_as(port, username):
    status, headers, body = request(port, "POST", "/api/login", urlencode({"username": username, "password": PASSWORD}),
                                    FORM)
    assert status == 200, body
    cookie = next(v for k, v in headers if k.lower() == "set-cookie").split(";", 1)[0]
    return {**FORM, "Cookie": cookie}


def test_racing_creates_end_exactly_at_the_admins_limits(ldap_server, root_connection, tmp_path):
    port = free_port()
    with gunicorn(ldap_server, tmp_path, f"127.0.0.1:{port}", threads=4) as (proc, access_log):
        wait_until_answering(port, proc, time.monotonic() + 20)
        root = {**FORM, "Cookie": f"{COOKIE}={login(port)}"}
        mail = f"r{uuid.uuid4().hex[:8]}@admins.test"
        status, _, body = request(port, "POST", f"/api/admin/{mail}",
                                  urlencode({"password": PASSWORD, "maxDomains": "2", "maxUsers": "3"}), root)
        assert status == 201, body
        admin = login_as(port, mail)
        tag = uuid.uuid4().hex[:6]
        domains = [f"race{i}-{tag}.test" for i in range(10)]

        def create_domain(domain):
            return request(port, "POST", f"/api/domain/{domain}", "", admin)

        with ThreadPoolExecutor(max_workers=10) as pool:
            results = list(pool.map(create_domain, domains))
        statuses = sorted(status for status, _, _ in results)
        assert statuses == [201] * 2 + [403] * 8, [body for _, _, body in results]
        assert all(json.loads(body)["_msg"] == "EXCEEDED_ADMIN_LIMIT" for status, _, body in results if status == 403)
        created = [d for d, (status, _, _) in zip(domains, results, strict=True) if status == 201]
        mine = count_entries(root_connection, f"o=domains,{SUFFIX}", f"(&(objectClass=mailDomain)(domainAdmin={mail}))")
        assert mine == 2
        for domain in domains:
            exists = read_entry(root_connection, f"domainName={domain},o=domains,{SUFFIX}") is not None
            assert exists == (domain in created)

        def create_user(i):
            domain = created[i % 2]  # both domains: the limit is over their sum
            return request(port, "POST", f"/api/user/u{i}@{domain}", urlencode({"password": PASSWORD}), admin)

        with ThreadPoolExecutor(max_workers=10) as pool:
            results = list(pool.map(create_user, range(10)))
        statuses = sorted(status for status, _, _ in results)
        assert statuses == [201] * 3 + [403] * 7, [body for _, _, body in results]
        users = sum(count_entries(root_connection, f"ou=Users,domainName={d},o=domains,{SUFFIX}",
                                  "(objectClass=mailUser)") for d in created)
        counted = sum(int(read_entry(root_connection, f"domainName={d},o=domains,{SUFFIX}")
                          ["domainCurrentUserNumber"][0]) for d in created)
        assert users == counted == 3
        entry = read_entry(root_connection, f"mail={mail},o=domainAdmins,{SUFFIX}")
        assert not [v for v in entry.get("accountSetting", []) if v.startswith("iredapiLease:")]
        # both workers answered: the race was between processes
        deadline = time.monotonic() + 5
        while len(access_log.read_text().splitlines()) < 24 and time.monotonic() < deadline:
            time.sleep(0.1)
        pids = {line.split()[0] for line in access_log.read_text().splitlines()[-20:] if line.strip()}
        assert len(pids) == 2, pids

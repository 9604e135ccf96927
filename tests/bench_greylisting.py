"""Latency of a greylisting POST through the app, on each SQL backend (a measurement, not a test:
the file name keeps it out of the suite).  Run it explicitly:

    .venv/bin/python -m pytest tests/bench_greylisting.py -q -s -p no:randomly

Per backend: 200 sequential ``POST /api/greylisting/<mail>`` (status alternating enable/disable,
so every request writes), then 200 ``POST /api/greylisting/<mail>/whitelists`` (addSenders and
removeSenders of one address in turn), in-process through falcon's TestClient on the session's slapd: the
session check, the domain and user reads (scope check) and the SQL upsert in its transaction.
"""

import statistics
import time

from tests.conftest import ApiClient

REQUESTS = 200


def test_greylisting_post_latency(make_app, sql_store, new_domain):
    client = ApiClient(make_app(iredapd_db_url=sql_store.url.render_as_string(hide_password=False))).login()
    domain = new_domain()
    assert client.post(f"/api/domain/{domain}").status_code == 201
    mail = f"bench@{domain}"
    assert client.post(f"/api/user/{mail}", {"password": "Secret-pw1!"}).status_code == 201
    setting = f"/api/greylisting/{mail}"
    whitelists = f"/api/greylisting/{mail}/whitelists"
    measure(client, sql_store, "POST status", setting,
            lambda i: {"status": "enable" if i % 2 else "disable"})
    measure(client, sql_store, "POST whitelists", whitelists,
            lambda i: {"addSenders": f"10.0.{i // 2 % 256}.1"} if i % 2 == 0
            else {"removeSenders": f"10.0.{i // 2 % 256}.1"})


def measure(client, sql_store, name, path, form):
    for i in range(10):  # warm-up: connections, statement caches
        client.post(path, form(i))
    times = []
    for i in range(REQUESTS):
        started = time.perf_counter()
        result = client.post(path, form(i))
        times.append((time.perf_counter() - started) * 1000)
        assert result.status_code == 200, result.text
    times.sort()
    p95 = times[int(len(times) * 0.95) - 1]
    print(f"\n{sql_store.dialect_name:10s} greylisting {name:15s} x{REQUESTS}: "
          f"median {statistics.median(times):.2f} ms, p95 {p95:.2f} ms, max {times[-1]:.2f} ms")

"""Every endpoint iRedAdmin-Pro's newest API reference documents is routed here, at both mount
points, for the method it documents.

The endpoints are read from the reference itself (``../shared/spec/pro-newest``), not copied, so
a route that goes missing (or a method a resource stops answering) fails here by name.  The
URL parts are a new domain name and addresses in it: most requests are then answered by the
resource with a 404 NO_SUCH_DOMAIN or NO_SUCH_ACCOUNT, a 400 for a missing parameter or a 503 for
mlmmjadmin (which these tests do not run); the few that create (the domain, an admin) are undone
after the test.  What must never come back is
the router's own answer: 404 ``NOT_FOUND`` (no such URL) or 405 (no such method), or a 500.
"""

import re

import pytest

from tests.conftest import failed
from tests.sql_backends import REPO

REFERENCE = REPO.parent / "shared" / "spec" / "pro-newest" / "2-iredadmin-pro.restful.api.md"
# `!!! api "`PUT`{: .put } `/api/domain/<domain>`{: .url } …`
ENDPOINT = re.compile(r'^!!! api "`([A-Z]+)`\{: \.[a-z]+ \} `(/api/[^`]*)`', re.M)
MOUNT_POINTS = ("/api", "/iredadmin/api")
PARTS = {"<domain>": "{domain}", "<mail>": "nobody@{domain}", "<new_mail>": "somebody@{domain}", "<number>": "7"}


def documented_endpoints():
    endpoints = sorted(set(ENDPOINT.findall(REFERENCE.read_text())))
    assert len(endpoints) >= 120, f"the reference lists {len(endpoints)} endpoints; is it the right file?"
    return endpoints


def concrete(path, domain):
    for placeholder, value in PARTS.items():
        path = path.replace(placeholder, value.format(domain=domain))
    assert "<" not in path, f"a URL part this test does not fill: {path}"
    return path


@pytest.fixture
def absent(api, new_domain):
    """A domain name nothing uses yet; what the requests created in it is deleted afterwards."""
    domain = new_domain()
    yield domain
    api.delete(f"/api/admin/nobody@{domain}")
    api.delete(f"/api/domain/{domain}")
    assert api.get(f"/api/domain/{domain}").status_code == 404


def test_the_reference_is_read():
    endpoints = documented_endpoints()
    assert ("PUT", "/api/domain/<domain>") in endpoints
    assert ("POST", "/api/greylisting/whitelist_spf_domains") in endpoints


@pytest.mark.parametrize("mount_point", MOUNT_POINTS)
def test_every_documented_endpoint_is_routed(api, absent, mount_point):
    unrouted = []
    for method, path in documented_endpoints():
        if path == "/api/login":
            continue  # logging in again would replace the session; test_login covers it
        url = mount_point + concrete(path, absent)[len("/api"):]
        result = api.request(method, url, form={})
        body = result.json if result.content_type.startswith("application/json") else {}
        if (result.status_code == 405 or result.status_code >= 500 and result.status_code != 503
                or (result.status_code == 404 and body.get("_msg") == "NOT_FOUND")):
            unrouted.append(f"{method} {url}: {result.status_code} {body.get('_msg')}")
    assert not unrouted, "\n".join(unrouted)


def test_an_unrouted_url_is_told_apart(api, absent):
    """The check above can fail: an undocumented URL gets the router's NOT_FOUND."""
    result = api.get(f"/api/no-such-resource/{absent}")
    assert result.status_code == 404
    assert result.json == failed("NOT_FOUND", detail=result.json.get("detail"))


# Documented parameters we take but do not act on, each named in X-Ignored-Parameters (README):
KNOWN_IGNORED = {
    # mlmmjadmin, which owns mlmmj lists, has no newsletter page (README, "Subscribable mailing lists")
    ("POST", "/api/ml/<mail>", "newsletter_description"),
    ("PUT", "/api/ml/<mail>", "newsletter_description"),
    # iRedAPD's own cron job resolves SPF domains (README, "Greylisting")
    ("POST", "/api/greylisting/whitelist_spf_domains", "query_dns_immediately"),
}
# `name` | Summary | `name=sample` rows of the parameter table after one or more endpoints
PARAMETER_ROW = re.compile(r"^\s+`([A-Za-z_]+)` \|(.*)$")
SAMPLE = re.compile(r"`([A-Za-z_]+)=([^`]*)`")


def documented_parameters():
    """(method, path, parameter, sample value) for every parameter table row of the reference;
    a table belongs to the endpoints with parameters listed just before it."""
    waiting, rows = [], []
    for line in REFERENCE.read_text().splitlines():
        endpoint = ENDPOINT.match(line)
        if endpoint:
            if "has_params" in line:
                waiting.append(endpoint.groups())
            continue
        row = PARAMETER_ROW.match(line)
        if row and waiting:
            samples = SAMPLE.findall(row.group(2))
            rows.extend((method, path, row.group(1), samples[0][1] if samples else "") for method, path in waiting)
        if line.strip() == "</div>":
            waiting = []
    return rows


def test_every_documented_parameter_is_taken(api, absent):
    """Each parameter alone, with the reference's own sample value, on absent targets: none is
    named in X-Ignored-Parameters but the few we document as ignored."""
    rows = documented_parameters()
    assert len(rows) >= 250, f"read {len(rows)} parameters; has the reference's table format changed?"
    ignored = set()
    for method, path, name, sample in rows:
        if path == "/api/login" or name == "isGlobalAdmin":
            continue  # a second login replaces the session; a global admin's limits are moot
        result = api.request(method, concrete(path, absent), form={name: sample})
        assert result.status_code < 500 or result.status_code == 503, (method, path, name, result.text)
        header = result.headers.get("X-Ignored-Parameters")
        if header and name in [item.strip() for item in header.split(",")]:
            ignored.add((method, path, name))
    assert ignored == KNOWN_IGNORED

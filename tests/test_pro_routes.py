"""Every endpoint iRedAdmin-Pro's newest API reference documents is routed here, at both mount
points, for the method it documents.

The endpoints are read from the reference itself (``../shared/spec/pro-newest``), not copied, so
a route that goes missing (or a method a resource stops answering) fails here by name.  The
URL parts are a domain and addresses that do not exist: every request is then answered by the
resource (a 404 NO_SUCH_DOMAIN or NO_SUCH_ACCOUNT, a 400 for a missing parameter, a 503 for
mlmmjadmin, which these tests do not run) and changes nothing.  What must never come back is
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
ABSENT_DOMAIN = "no-such-domain.pro-routes.test"
PARTS = {
    "<domain>": ABSENT_DOMAIN,
    "<mail>": f"nobody@{ABSENT_DOMAIN}",
    "<new_mail>": f"somebody@{ABSENT_DOMAIN}",
    "<number>": "7",
}


def documented_endpoints():
    endpoints = sorted(set(ENDPOINT.findall(REFERENCE.read_text())))
    assert len(endpoints) >= 120, f"the reference lists {len(endpoints)} endpoints; is it the right file?"
    return endpoints


def concrete(path):
    for placeholder, value in PARTS.items():
        path = path.replace(placeholder, value)
    assert "<" not in path, f"a URL part this test does not fill: {path}"
    return path


def test_the_reference_is_read():
    endpoints = documented_endpoints()
    assert ("PUT", "/api/domain/<domain>") in endpoints
    assert ("POST", "/api/greylisting/whitelist_spf_domains") in endpoints


@pytest.mark.parametrize("mount_point", MOUNT_POINTS)
def test_every_documented_endpoint_is_routed(api, mount_point):
    unrouted = []
    for method, path in documented_endpoints():
        if path == "/api/login":
            continue  # logging in again would replace the session; test_login covers it
        url = mount_point + concrete(path)[len("/api"):]
        result = api.request(method, url, form={})
        body = result.json if result.content_type.startswith("application/json") else {}
        if (result.status_code == 405 or result.status_code >= 500 and result.status_code != 503
                or (result.status_code == 404 and body.get("_msg") == "NOT_FOUND")):
            unrouted.append(f"{method} {url}: {result.status_code} {body.get('_msg')}")
    assert not unrouted, "\n".join(unrouted)


def test_an_unrouted_url_is_told_apart(api):
    """The check above can fail: an undocumented URL gets the router's NOT_FOUND."""
    result = api.get(f"/api/no-such-resource/{ABSENT_DOMAIN}")
    assert result.status_code == 404
    assert result.json == failed("NOT_FOUND", detail=result.json.get("detail"))

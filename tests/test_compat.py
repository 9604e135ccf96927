"""Drop-in for the clients that exist: both mount points, both envelope generations, empty
path segments."""

import pytest

from tests.conftest import GLOBAL_ADMIN, GLOBAL_ADMIN_PASSWORD, ApiClient, failed

MOUNT_POINTS = ("/api", "/iredadmin/api")


@pytest.mark.parametrize("prefix", MOUNT_POINTS)
def test_both_mount_points_serve_the_whole_api(make_app, new_domain, prefix):
    client = ApiClient(make_app())
    login = client.post(f"{prefix}/login", {"username": GLOBAL_ADMIN, "password": GLOBAL_ADMIN_PASSWORD})
    assert login.status_code == 200 and login.json == {"_success": True, "success": True}
    domain = new_domain()
    assert client.post(f"{prefix}/domain/{domain}", {"cn": "Mounted"}).status_code == 201
    assert client.get(f"{prefix}/domain/{domain}").json["_data"]["cn"] == ["Mounted"]
    # a session from one mount point is good at the other
    other = MOUNT_POINTS[1 - MOUNT_POINTS.index(prefix)]
    assert client.get(f"{other}/domain/{domain}").status_code == 200
    assert client.get(f"{prefix}/nothing").json == failed("NOT_FOUND", detail="404 Not Found")


def test_the_default_envelope_satisfies_2016_and_current_clients(api, new_domain):
    domain = new_domain()
    created = api.post(f"/iredadmin/api/domain/{domain}")
    assert created.json == {"_success": True, "success": True}
    got = api.get(f"/iredadmin/api/domain/{domain}").json
    assert set(got) == {"_success", "success", "_data"}  # the payload once
    listed = api.get("/iredadmin/api/domains", params={"name_only": "yes"}).json
    assert listed["_success"] is True and listed["success"] is True
    assert domain in listed["_data"] and "data" not in listed
    missing = api.get(f"/api/domain/{new_domain()}")
    assert missing.status_code == 404 and missing.json["msg"] == missing.json["_msg"] == "NO_SUCH_DOMAIN"
    # a 2016 client reads the throttle GET's "setting"; a current one reads "_data"
    api.post(f"/api/throttle/{domain}/outbound", {"period": "60", "max_msgs": "5"})
    throttle = api.get(f"/api/throttle/{domain}/outbound").json
    assert throttle["setting"] == throttle["_data"] and throttle["_data"]["max_msgs"] == 5


def test_the_pro_dialect_answers_every_get_in_data(make_app, new_domain):
    client = ApiClient(make_app(API_ENVELOPE="pro")).login()
    domain = new_domain()
    client.post(f"/api/domain/{domain}")
    client.post(f"/api/throttle/{domain}/inbound", {"period": "60", "max_msgs": "7"})
    for path in (f"/api/domain/{domain}", "/api/domains", f"/api/users/{domain}",
                 f"/api/throttle/{domain}/inbound"):
        body = client.get(path).json
        assert set(body) == {"_success", "_data"}, path
    assert client.get(f"/api/throttle/{domain}/inbound").json["_data"]["max_msgs"] == 7


def test_the_seed_dialect_is_pure(make_app, new_domain):
    client = ApiClient(make_app(API_ENVELOPE="seed")).login()
    domain = new_domain()
    assert client.post(f"/iredadmin/api/domain/{domain}").json == {"success": True}
    assert set(client.get(f"/api/domain/{domain}").json) == {"success", "data"}
    client.post(f"/api/throttle/{domain}/inbound", {"period": "60", "max_msgs": "7"})
    assert set(client.get(f"/api/throttle/{domain}/inbound").json) == {"success", "data", "setting"}
    missing = client.get(f"/api/domain/{new_domain()}").json
    assert set(missing) == {"success", "msg", "detail"} and missing["msg"] == "NO_SUCH_DOMAIN"


@pytest.mark.parametrize("path", ["/api//login", "/iredadmin/api//login", "//api/login", "/iredadmin//api///login"])
def test_empty_path_segments_are_ignored(anonymous, path):
    result = anonymous.post(path, {"username": GLOBAL_ADMIN, "password": GLOBAL_ADMIN_PASSWORD})
    assert result.status_code == 200 and result.json["_success"] is True


def test_empty_segments_inside_item_urls(api, new_domain):
    domain = new_domain()
    assert api.post(f"/iredadmin/api//domain//{domain}").status_code == 201
    assert api.get(f"/api/domain/{domain}//").status_code == 200

"""/api/ml/<mail> and /api/mls/<domain> (subscribable mlmmj lists) with the real mlmmjadmin 3.6.3
and Debian's mlmmj: mlmmj's own ``mlmmj-list`` reads the spool, Postfix's
transport_maps_user lookup (tests/mailstack) reads the entry mlmmjadmin wrote."""


import threading
import time

import ldap3
import pytest

from tests.conftest import SUFFIX, ApiClient, _ssha, count_entries, domain_dn, failed, list_dn, read_entry, user_dn
from tests.mlmmjadmin_peer import start_peer

PASSWORD = "Secret-pw1!"


@pytest.fixture
def app_settings(mlmmjadmin):
    return mlmmjadmin.settings()


@pytest.fixture
def mapi(make_app, app_settings):
    """A global admin's client of an app that talks to the module's mlmmjadmin."""
    return ApiClient(make_app(**app_settings)).login()


@pytest.fixture
def domain(mapi, new_domain):
    name = new_domain()
    assert mapi.post(f"/api/domain/{name}").status_code == 201
    return name


def list_count(conn, domain):
    return int(read_entry(conn, domain_dn(domain)).get("domainCurrentListNumber", ["0"])[0])


def nothing_of(conn, peer, mail):
    """No entry in LDAP and no spool for ``mail``."""
    return read_entry(conn, list_dn(mail)) is None and not peer.list_dir(mail).exists()


def test_create_subscribe_update_unsubscribe_delete(mapi, mlmmjadmin, mailstack, root_connection, domain):
    mail = f"team@{domain}"
    result = mapi.post(f"/api/ml/{mail}", {
        "name": "The Team", "owner": f"boss@{domain}", "subscribers": "a@ext.test,b@ext.test",
        "require_confirm": "no", "subject_prefix": "[team]", "max_message_size": "102400"})
    assert result.status_code == 201, result.text
    # what mlmmjadmin's LDAP backend wrote, as Postfix sees it
    entry = read_entry(root_connection, list_dn(mail))
    assert "mlmmj" in entry["enabledService"] and entry["cn"] == ["The Team"]
    assert entry["mtaTransport"] == [f"mlmmj:{domain}/team"]
    assert mailstack.postfix.lookup("transport_maps_user", mail) == [f"mlmmj:{domain}/team"]
    assert list_count(root_connection, domain) == 1
    # mlmmj's own view of the spool
    assert mlmmjadmin.mlmmj_list(mail) == ["a@ext.test", "b@ext.test"]
    data = mapi.get(f"/api/ml/{mail}", params={"with_subscribers": "yes"}).json["_data"]
    assert data["subscribers"] == ["a@ext.test", "b@ext.test"] and data["mail"] == mail
    assert data["subject_prefix"] == "[team]" and data["max_message_size"] == "102400", data  # as mlmmjadmin gives it
    assert data["owner"] == [f"boss@{domain}"]

    # subscribe and unsubscribe (the identity-operator use: require_confirm=no)
    result = mapi.put(f"/api/ml/{mail}", {"add_subscribers": "c@ext.test", "remove_subscribers": "a@ext.test",
                                          "require_confirm": "no"})
    assert result.status_code == 200, result.text
    assert mlmmjadmin.mlmmj_list(mail) == ["b@ext.test", "c@ext.test"]
    assert mapi.put(f"/api/ml/{mail}", {"add_subscribers": "d@ext.test", "require_confirm": "no",
                                        "subscription": "digest"}).status_code == 200
    assert mlmmjadmin.mlmmj_list(mail, "-d") == ["d@ext.test"]
    assert mapi.get(f"/api/ml/{mail}", params={"with_subscribers": "yes"}).json["_data"]["subscribers"] == [
        "b@ext.test", "c@ext.test", "d@ext.test"]

    # profile options; a PUT without name keeps the name (mlmmjadmin would drop it)
    assert mapi.put(f"/api/ml/{mail}", {"subject_prefix": "[new]", "close_list": "yes",
                                        "owner": f"boss@{domain},deputy@{domain}"}).status_code == 200
    data = mapi.get(f"/api/ml/{mail}").json["_data"]
    assert data["subject_prefix"] == "[new]" and data["close_list"] == "yes", data
    assert sorted(data["owner"]) == [f"boss@{domain}", f"deputy@{domain}"]
    assert read_entry(root_connection, list_dn(mail))["cn"] == ["The Team"]
    assert mapi.put(f"/api/ml/{mail}", {"name": "Renamed"}).status_code == 200
    assert read_entry(root_connection, list_dn(mail))["cn"] == ["Renamed"]

    # listing
    assert mapi.get(f"/api/mls/{domain}", params={"email_only": "yes"}).json["_data"] == [mail]
    [item] = mapi.get(f"/api/mls/{domain}").json["_data"]
    assert item["mail"] == mail and item["name"] == "Renamed" and item["accountStatus"] == "active"
    # old-style lists' endpoints do not see it
    assert mapi.get(f"/api/maillist/{mail}").status_code == 404
    assert mapi.get(f"/api/maillists/{domain}", params={"email_only": "yes"}).json["_data"] == []

    # delete without archive: entry, spool and transport gone, the slot given back
    result = mapi.delete(f"/api/ml/{mail}", params={"keep_archive": "no"})
    assert result.status_code == 200, result.text
    assert nothing_of(root_connection, mlmmjadmin, mail)
    assert mailstack.postfix.lookup("transport_maps_user", mail) == []
    assert list_count(root_connection, domain) == 0
    assert mapi.get(f"/api/ml/{mail}").json == failed("NO_SUCH_ACCOUNT", detail=mail)
    assert mapi.delete(f"/api/ml/{mail}").status_code == 404


def test_delete_keeps_the_archive_by_default(mapi, mlmmjadmin, root_connection, domain):
    mail = f"kept@{domain}"
    assert mapi.post(f"/api/ml/{mail}").status_code == 201
    assert mapi.delete(f"/api/ml/{mail}").status_code == 200
    assert nothing_of(root_connection, mlmmjadmin, mail)
    archived = list((mlmmjadmin.archive / domain).glob("kept-*")) if (mlmmjadmin.archive / domain).exists() else []
    assert archived, list(mlmmjadmin.archive.rglob("*"))[:10]


def test_number_of_lists_counts_both_kinds(mapi, mlmmjadmin, root_connection,
                                          new_domain):
    domain = new_domain()
    assert mapi.post(f"/api/domain/{domain}", {"numberOfLists": "2"}).status_code == 201
    assert mapi.post(f"/api/maillist/old@{domain}").status_code == 201
    assert mapi.post(f"/api/ml/one@{domain}").status_code == 201
    result = mapi.post(f"/api/ml/two@{domain}")
    assert result.status_code == 403 and result.json["msg"] == "EXCEEDED_DOMAIN_ACCOUNT_LIMIT", result.text
    assert nothing_of(root_connection, mlmmjadmin, f"two@{domain}")
    result = mapi.post(f"/api/maillist/two@{domain}")
    assert result.status_code == 403 and result.json["msg"] == "EXCEEDED_DOMAIN_ACCOUNT_LIMIT"
    assert list_count(root_connection, domain) == 2
    # a slot freed by an old-style list serves an mlmmj list
    assert mapi.delete(f"/api/maillist/old@{domain}").status_code == 200
    assert list_count(root_connection, domain) == 1
    assert mapi.post(f"/api/ml/two@{domain}").status_code == 201
    assert list_count(root_connection, domain) == 2


def test_parallel_creates_respect_the_limit(mapi, make_app, app_settings, mlmmjadmin, root_connection, new_domain):
    domain = new_domain()
    assert mapi.post(f"/api/domain/{domain}", {"numberOfLists": "3"}).status_code == 201
    app = make_app(**app_settings)
    clients = [ApiClient(app).login() for _ in range(4)]
    results, barrier = [None] * 8, threading.Barrier(8)

    def run(i):
        barrier.wait()
        results[i] = clients[i % 4].post(f"/api/ml/p{i}@{domain}").status_code

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(201) == 3 and set(results) == {201, 403}, results
    assert count_entries(root_connection, f"ou=Groups,{domain_dn(domain)}", "(objectClass=mailList)") == 3
    assert len(list((mlmmjadmin.spool / domain).iterdir())) == 3
    assert list_count(root_connection, domain) == 3


def test_a_create_mlmmjadmin_refuses_gives_the_slot_back(mapi, mlmmjadmin, root_connection, domain):
    mail = f"refused@{domain}"
    before = list_count(root_connection, domain)
    # an unknown token: mlmmjadmin's own code, 503, nothing written, slot given back
    bad = ApiClient(make_app_with(mapi, mlmmjadmin_api_auth_token="wrong")).login()
    result = bad.post(f"/api/ml/{mail}")
    assert result.status_code == 503, result.text
    assert result.json["msg"] == "INVALID_MLMMJADMIN_API_AUTH_TOKEN"
    assert nothing_of(root_connection, mlmmjadmin, mail)
    assert list_count(root_connection, domain) == before


def make_app_with(client, **overrides):
    """An app like ``client``'s with settings changed."""
    from iredapi_ldap.app import create_app

    settings = client.app.services.settings.replace(**overrides)
    return create_app(settings)


@pytest.mark.parametrize("kind", ["user", "user alias address", "alias", "old list", "mlmmj list"])
def test_address_taken_is_409_before_mlmmjadmin_is_asked(mapi, mlmmjadmin, root_connection, domain, kind):
    mail = f"taken@{domain}"
    if kind == "user":
        assert mapi.post(f"/api/user/{mail}", {"password": PASSWORD}).status_code == 201
    elif kind == "user alias address":
        assert mapi.post(f"/api/user/someone@{domain}", {"password": PASSWORD}).status_code == 201
        assert mapi.put(f"/api/user/someone@{domain}", {"addAlias": mail}).status_code == 200
    elif kind == "alias":
        assert mapi.post(f"/api/alias/{mail}", {"members": "x@ext.test"}).status_code == 201
    elif kind == "old list":
        assert mapi.post(f"/api/maillist/{mail}").status_code == 201
    else:
        assert mapi.post(f"/api/ml/{mail}").status_code == 201
    before = list_count(root_connection, domain)
    spool = sorted(p.name for p in (mlmmjadmin.spool / domain).glob("*")) if (mlmmjadmin.spool / domain).exists() \
        else []
    result = mapi.post(f"/api/ml/{mail}", {"subscribers": "s@ext.test", "require_confirm": "no"})
    assert result.status_code == 409 and result.json["msg"] == "ALREADY_EXISTS", result.text
    assert list_count(root_connection, domain) == before
    after = sorted(p.name for p in (mlmmjadmin.spool / domain).glob("*")) if (mlmmjadmin.spool / domain).exists() \
        else []
    assert after == spool
    if kind == "mlmmj list":
        assert mlmmjadmin.mlmmj_list(mail) == []


@pytest.mark.parametrize(("form", "param"), [
    ({"close_list": "maybe"}, "close_list"),
    ({"subscribers": "not-an-address"}, "subscribers"),
    ({"owner": "a@ext.test,bad"}, "owner"),
    ({"max_message_size": "-1"}, "max_message_size"),
    ({"max_message_size": "lots"}, "max_message_size"),
    ({"subscription": "weekly"}, "subscription"),
    ({"require_confirm": "perhaps"}, "require_confirm"),
    ({"custom_headers": "no colon here"}, "custom_headers"),
    ({"remove_headers": "Bad Header"}, "remove_headers"),
    ({"name": "x\x01y"}, "name"),
    ({"footer_text": "a\x00b"}, "footer_text"),
])
def test_bad_input_creates_nothing(mapi, mlmmjadmin, root_connection, domain, form, param):
    mail = f"bad@{domain}"
    result = mapi.post(f"/api/ml/{mail}", form)
    assert result.status_code == 400 and result.json["param"] == param, result.text
    assert nothing_of(root_connection, mlmmjadmin, mail)
    assert list_count(root_connection, domain) == 0


def test_bad_addresses_and_bad_update_change_nothing(mapi, mlmmjadmin, root_connection, domain):
    for mail in (f"a+b@{domain}", "no-domain"):
        result = mapi.post(f"/api/ml/{mail}")
        assert result.status_code == 400, result.text
    assert not (mlmmjadmin.spool / domain).exists() or not list((mlmmjadmin.spool / domain).iterdir())
    mail = f"keep@{domain}"
    assert mapi.post(f"/api/ml/{mail}", {"subscribers": "a@ext.test", "require_confirm": "no",
                                         "subject_prefix": "[k]"}).status_code == 201
    for form, param in (({"add_subscribers": "x@ext.test", "remove_subscribers": "x@ext.test"}, "remove_subscribers"),
                        ({"add_subscribers": "bad"}, "add_subscribers"),
                        ({"subject_prefix": "[new]", "moderated": "sometimes"}, "moderated")):
        result = mapi.put(f"/api/ml/{mail}", form)
        assert result.status_code == 400 and result.json["param"] == param, result.text
    assert mlmmjadmin.mlmmj_list(mail) == ["a@ext.test"]
    assert mapi.get(f"/api/ml/{mail}").json["_data"]["subject_prefix"] == "[k]"
    # an unknown list
    assert mapi.put(f"/api/ml/nolist@{domain}", {"name": "x"}).json == failed("NO_SUCH_ACCOUNT",
                                                                              detail=f"nolist@{domain}")


def test_domain_admin_scope(mapi, make_app, app_settings, mlmmjadmin, root_connection, domain, new_domain):
    other = new_domain()
    assert mapi.post(f"/api/domain/{other}").status_code == 201
    assert mapi.post(f"/api/ml/theirs@{other}").status_code == 201
    admin = f"mladmin@{domain}"
    root_connection.add(f"mail={admin},o=domainAdmins,{SUFFIX}", attributes={
        "objectClass": ["mailAdmin"], "mail": [admin], "userPassword": [_ssha("Admin-Pw-9")],
        "accountStatus": ["active"]})
    root_connection.modify(domain_dn(domain), {"domainAdmin": [(ldap3.MODIFY_ADD, [admin])]})
    client = ApiClient(make_app(**app_settings)).login(admin, "Admin-Pw-9")
    # its own domain: yes (subscribers anywhere: they are people, not accounts)
    assert client.post(f"/api/ml/mine@{domain}", {"subscribers": f"x@{other},y@ext.test",
                                                  "require_confirm": "no"}).status_code == 201
    assert mlmmjadmin.mlmmj_list(f"mine@{domain}") == [f"x@{other}", "y@ext.test"]
    assert client.put(f"/api/ml/mine@{domain}", {"name": "Mine"}).status_code == 200
    assert client.get(f"/api/mls/{domain}", params={"email_only": "yes"}).json["_data"] == [f"mine@{domain}"]
    # another domain: no, and nothing changes
    for result in (client.post(f"/api/ml/x@{other}"), client.get(f"/api/ml/theirs@{other}"),
                   client.put(f"/api/ml/theirs@{other}", {"add_subscribers": "z@ext.test", "require_confirm": "no"}),
                   client.delete(f"/api/ml/theirs@{other}"), client.get(f"/api/mls/{other}")):
        assert result.status_code == 403 and result.json["msg"] == "PERMISSION_DENIED", result.text
    assert nothing_of(root_connection, mlmmjadmin, f"x@{other}")
    assert read_entry(root_connection, list_dn(f"theirs@{other}")) is not None
    assert mlmmjadmin.mlmmj_list(f"theirs@{other}") == []
    assert client.delete(f"/api/ml/mine@{domain}").status_code == 200


def test_deleting_a_user_unsubscribes_it_everywhere(mapi, mlmmjadmin, root_connection, domain, new_domain):
    other = new_domain()
    assert mapi.post(f"/api/domain/{other}").status_code == 201
    user = f"leaver@{domain}"
    assert mapi.post(f"/api/user/{user}", {"password": PASSWORD}).status_code == 201
    for mail in (f"here@{domain}", f"there@{other}"):
        assert mapi.post(f"/api/ml/{mail}", {"subscribers": f"{user},stay@ext.test",
                                             "require_confirm": "no"}).status_code == 201
    assert mapi.post(f"/api/maillist/old@{domain}", {"members": user}).status_code == 201
    profile = mapi.get(f"/api/user/{user}").json["_data"]
    assert profile["mailing_lists"] == sorted([f"here@{domain}", f"there@{other}", f"old@{domain}"])
    assert mapi.delete(f"/api/user/{user}").status_code == 200
    for mail in (f"here@{domain}", f"there@{other}"):
        assert mlmmjadmin.mlmmj_list(mail) == ["stay@ext.test"]
    assert read_entry(root_connection, user_dn(user)) is None


def test_deleting_a_domain_deletes_its_mlmmj_lists(mapi, mlmmjadmin, mailstack, root_connection, new_domain):
    domain, other = new_domain(), new_domain()
    for name in (domain, other):
        assert mapi.post(f"/api/domain/{name}").status_code == 201
    mails = [f"l{i}@{domain}" for i in range(3)]
    for mail in mails:
        assert mapi.post(f"/api/ml/{mail}", {"subscribers": "s@ext.test", "require_confirm": "no"}).status_code == 201
    # the domain's addresses on another domain's list leave it
    assert mapi.post(f"/api/ml/elsewhere@{other}", {"subscribers": f"u@{domain},v@{domain},keep@ext.test",
                                                    "require_confirm": "no"}).status_code == 201
    assert mailstack.postfix.lookup("transport_maps_user", mails[0]) == [f"mlmmj:{domain}/l0"]
    assert mapi.delete(f"/api/domain/{domain}").status_code == 200
    assert read_entry(root_connection, domain_dn(domain)) is None
    for mail in mails:
        assert not mlmmjadmin.list_dir(mail).exists()
        assert mailstack.postfix.lookup("transport_maps_user", mail) == []
    # archived (a domain delete keeps mail data)
    assert len(list((mlmmjadmin.archive / domain).glob("l*-*"))) == 3
    assert mlmmjadmin.mlmmj_list(f"elsewhere@{other}") == ["keep@ext.test"]


def test_mlmmjadmin_stopped_and_restarted(make_app, ldap_server, root_connection, new_domain):
    peer = start_peer(ldap_server)
    try:
        client = ApiClient(make_app(**peer.settings())).login()
        domain = new_domain()
        assert client.post(f"/api/domain/{domain}").status_code == 201
        assert client.post(f"/api/ml/up@{domain}").status_code == 201
        assert client.post(f"/api/user/u@{domain}", {"password": PASSWORD}).status_code == 201
        peer.stop()
        for method, path, form in (("post", f"/api/ml/down@{domain}", None), ("get", f"/api/ml/up@{domain}", None),
                                   ("put", f"/api/ml/up@{domain}", {"add_subscribers": "a@ext.test"}),
                                   ("delete", f"/api/ml/up@{domain}", None)):
            started = time.monotonic()
            result = getattr(client, method)(path, form=form) if form else getattr(client, method)(path)
            assert time.monotonic() - started < 5, "within the timeout"
            assert result.status_code == 503 and result.json["msg"] == "SERVICE_UNAVAILABLE", result.text
        assert nothing_of(root_connection, peer, f"down@{domain}")
        # a taken address is refused by our own check, mlmmjadmin or not
        result = client.post(f"/api/ml/u@{domain}")
        assert result.status_code == 409 and result.json["msg"] == "ALREADY_EXISTS", result.text
        assert read_entry(root_connection, list_dn(f"up@{domain}")) is not None
        assert list_count(root_connection, domain) == 1
        # the rest of the API keeps working, and reads what LDAP says
        assert client.get(f"/api/domain/{domain}").status_code == 200
        assert client.post(f"/api/user/v@{domain}", {"password": PASSWORD}).status_code == 201
        assert client.get(f"/api/mls/{domain}", params={"email_only": "yes"}).json["_data"] == [f"up@{domain}"]
        result = client.get(f"/api/user/u@{domain}")
        assert result.status_code == 200 and result.headers["X-Incomplete"] == "mailing_lists"
        # deleting a user needs mlmmjadmin while mlmmj lists exist: refused, nothing deleted
        assert client.delete(f"/api/user/u@{domain}").status_code == 503
        assert read_entry(root_connection, user_dn(f"u@{domain}")) is not None
        # restarted: works again
        peer.start()
        assert client.post(f"/api/ml/down@{domain}", {"subscribers": "a@ext.test",
                                                      "require_confirm": "no"}).status_code == 201
        assert peer.mlmmj_list(f"down@{domain}") == ["a@ext.test"]
        assert client.delete(f"/api/user/u@{domain}").status_code == 200
        assert list_count(root_connection, domain) == 2
    finally:
        peer.close()


def test_unreachable_mlmmjadmin_answers_within_the_timeout(make_app, new_domain):
    # a port nobody listens on: refused at once; a black-holed address: the timeout
    client = ApiClient(make_app(MLMMJADMIN_API_BASE_URL="http://192.0.2.1:7790/api",
                                MLMMJADMIN_API_TIMEOUT=1)).login()
    domain = new_domain()
    assert client.post(f"/api/domain/{domain}").status_code == 201
    started = time.monotonic()
    result = client.post(f"/api/ml/x@{domain}")
    assert time.monotonic() - started < 3
    assert result.status_code == 503 and result.json["msg"] == "SERVICE_UNAVAILABLE", result.text
    assert client.get(f"/api/domain/{domain}").json["_data"]["domainCurrentListNumber"] == ["0"]


def test_without_mlmmjadmin_configured(api, mapi, root_connection, new_domain):
    """MLMMJADMIN_API_BASE_URL = "": /api/ml answers 503 after checking its input; users and
    domains are deleted without asking anyone about mlmmj lists."""
    domain = new_domain()
    assert api.post(f"/api/domain/{domain}").status_code == 201
    assert mapi.post(f"/api/ml/exists@{domain}").status_code == 201  # the server has mlmmj lists
    assert api.post(f"/api/user/u@{domain}", {"password": PASSWORD}).status_code == 201
    assert api.post(f"/api/ml/x@{domain}", {"close_list": "maybe"}).status_code == 400
    result = api.post(f"/api/ml/x@{domain}")
    assert result.status_code == 503 and result.json["msg"] == "SERVICE_UNAVAILABLE", result.text
    assert read_entry(root_connection, list_dn(f"x@{domain}")) is None
    assert api.get(f"/api/user/u@{domain}").json["_data"]["mailing_lists"] == []
    assert api.delete(f"/api/user/u@{domain}").status_code == 200
    assert mapi.delete(f"/api/ml/exists@{domain}").status_code == 200


def _timed(call, runs):
    times = []
    for i in range(runs):
        started = time.perf_counter()
        call(i)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"median_ms": round(times[len(times) // 2], 1), "p90_ms": round(times[int(len(times) * 0.9) - 1], 1),
            "max_ms": round(times[-1], 1)}


def test_latency_of_create_and_subscribe(mapi, mlmmjadmin, new_domain):
    """Figures (``pytest -s -k latency``): a list create and a subscribe through our API
    (in-process Falcon, the real mlmmjadmin over HTTP on 127.0.0.1) next to the same
    mlmmjadmin calls made directly, which is what they cost in mlmmjadmin and mlmmj."""
    import urllib.parse
    import urllib.request

    domain = new_domain()
    assert mapi.post(f"/api/domain/{domain}").status_code == 201
    runs = 20

    def direct(method, path, form):
        req = urllib.request.Request(f"{mlmmjadmin.base_url}/{path}", data=urllib.parse.urlencode(form).encode(),
                                     method=method, headers={"X-MLMMJADMIN-API-AUTH-TOKEN": mlmmjadmin.settings()[
                                         "mlmmjadmin_api_auth_token"]})
        with urllib.request.urlopen(req, timeout=10) as answer:
            assert b'"_success": true' in answer.read()

    def ours_create(i):
        assert mapi.post(f"/api/ml/ours{i}@{domain}", {"name": "x"}).status_code == 201

    def direct_create(i):
        direct("POST", f"direct{i}@{domain}", {"name": "x"})

    def ours_subscribe(i):
        assert mapi.put(f"/api/ml/ours0@{domain}", {"add_subscribers": f"s{i}@ext.test",
                                                    "require_confirm": "no"}).status_code == 200

    def direct_subscribe(i):
        direct("POST", f"direct0@{domain}/subscribers", {"add_subscribers": f"s{i}@ext.test",
                                                         "require_confirm": "no"})

    figures = {"create (API)": _timed(ours_create, runs), "create (mlmmjadmin direct)": _timed(direct_create, runs),
               "subscribe (API)": _timed(ours_subscribe, runs),
               "subscribe (mlmmjadmin direct)": _timed(direct_subscribe, runs)}
    for name, value in figures.items():
        print(f"{name}: {value}")
    assert len(mlmmjadmin.mlmmj_list(f"ours0@{domain}")) == runs
    assert figures["create (API)"]["median_ms"] < 2000 and figures["subscribe (API)"]["median_ms"] < 2000


def test_two_creates_of_one_address_race(mapi, make_app, app_settings, mlmmjadmin, root_connection, domain):
    app = make_app(**app_settings)
    clients = [ApiClient(app).login() for _ in range(4)]
    mail = f"race@{domain}"
    results, barrier = [None] * 4, threading.Barrier(4)

    def run(i):
        barrier.wait()
        result = clients[i].post(f"/api/ml/{mail}")
        results[i] = (result.status_code, result.json.get("msg"))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results)[0] == (201, None) and results.count((201, None)) == 1, results
    assert all(r == (409, "ALREADY_EXISTS") for r in results if r[0] != 201), results
    assert list_count(root_connection, domain) == 1
    assert mlmmjadmin.list_dir(mail).is_dir()


def test_require_confirm_defaults_to_yes(mapi, mlmmjadmin, domain):
    """Without require_confirm=no mlmmj asks the subscriber first (Pro's default): a pending
    confirmation in the spool, nobody subscribed yet."""
    mail = f"confirm@{domain}"
    assert mapi.post(f"/api/ml/{mail}", {"subscribers": "p@ext.test"}).status_code == 201
    assert mapi.put(f"/api/ml/{mail}", {"add_subscribers": "q@ext.test"}).status_code == 200
    # mlmmjadmin starts mlmmj-sub -C without waiting for it: the confirmations appear shortly
    deadline = time.monotonic() + 10
    while True:
        pending = sorted(p.name.split("-", 1)[1] for p in (mlmmjadmin.list_dir(mail) / "subconf").glob("*-*"))
        if pending == ["p=ext.test", "q=ext.test"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert pending == ["p=ext.test", "q=ext.test"]
    assert mlmmjadmin.mlmmj_list(mail) == []


@pytest.mark.parametrize(("form", "policy", "flags"), [
    ({}, None, ("no", "yes")),
    ({"only_subscriber_can_post": "yes"}, "membersonly", ("no", "yes")),
    ({"only_moderator_can_post": "yes", "only_subscriber_can_post": "no"}, "moderatorsonly", ("yes", "no")),
])
def test_posting_options_on_create(mapi, mlmmjadmin, root_connection, domain, form, policy, flags):
    """mlmmjadmin's create alone would write accessPolicy moderatorsonly for
    only_subscriber_can_post=yes (iRedAPD would then refuse the subscribers' posts)."""
    mail = f"post@{domain}"
    assert mapi.post(f"/api/ml/{mail}", {"name": "Posting", **form}).status_code == 201
    entry = read_entry(root_connection, list_dn(mail))
    assert entry.get("accessPolicy", [None]) == [policy] and entry["cn"] == ["Posting"]
    data = mapi.get(f"/api/ml/{mail}").json["_data"]
    assert (data["only_moderator_can_post"], data["only_subscriber_can_post"]) == flags


# -- accountStatus and accessPolicy (iredapi_ldap.mlmmj_policy) ----------------------------------


def posting_flags(peer, mail):
    """mlmmj's own control files: (modonlypost, subonlypost) present."""
    control = peer.list_dir(mail) / "control"
    return (control / "modonlypost").exists(), (control / "subonlypost").exists()


def test_account_status_stops_and_restarts_delivery(mapi, mlmmjadmin, mailstack, root_connection, domain):
    """Postfix's transport_maps_user routes an mlmmj list only while accountStatus=active;
    mlmmjadmin has no API for it, so we write it on the entry."""
    mail = f"status@{domain}"
    result = mapi.post(f"/api/ml/{mail}", {"accountStatus": "disabled", "subscribers": "a@ext.test",
                                           "require_confirm": "no"})
    assert result.status_code == 201, result.text
    assert read_entry(root_connection, list_dn(mail))["accountStatus"] == ["disabled"]
    assert mailstack.postfix.lookup("transport_maps_user", mail) == []
    assert mapi.get(f"/api/ml/{mail}").json["_data"]["accountStatus"] == "disabled"
    assert mlmmjadmin.mlmmj_list(mail) == ["a@ext.test"]  # the rest of the create happened

    assert mapi.put(f"/api/ml/{mail}", {"accountStatus": "active"}).status_code == 200
    assert read_entry(root_connection, list_dn(mail))["accountStatus"] == ["active"]
    assert mailstack.postfix.lookup("transport_maps_user", mail) == [f"mlmmj:{domain}/status"]
    assert mapi.get(f"/api/ml/{mail}").json["_data"]["accountStatus"] == "active"

    # disabled together with a profile change through mlmmjadmin: both happen
    assert mapi.put(f"/api/ml/{mail}", {"accountStatus": "disabled", "subject_prefix": "[off]"}).status_code == 200
    assert mailstack.postfix.lookup("transport_maps_user", mail) == []
    data = mapi.get(f"/api/ml/{mail}").json["_data"]
    assert data["accountStatus"] == "disabled" and data["subject_prefix"] == "[off]"
    [item] = mapi.get(f"/api/mls/{domain}").json["_data"]
    assert item["accountStatus"] == "disabled"


# policy -> (modonlypost, subonlypost) in mlmmj's spool
POLICY_FLAGS = {"public": (False, False), "domain": (False, False), "subdomain": (False, False),
                "membersonly": (False, True), "moderatorsonly": (True, False)}


@pytest.mark.parametrize("policy", sorted(POLICY_FLAGS))
def test_access_policy_on_create(mapi, mlmmjadmin, root_connection, domain, policy):
    mail = f"policy@{domain}"
    result = mapi.post(f"/api/ml/{mail}", {"name": "Policy", "accessPolicy": policy.upper()})
    assert result.status_code == 201, result.text
    entry = read_entry(root_connection, list_dn(mail))
    assert entry["accessPolicy"] == [policy] and entry["cn"] == ["Policy"]  # not mlmmjadmin's value
    assert posting_flags(mlmmjadmin, mail) == POLICY_FLAGS[policy]
    data = mapi.get(f"/api/ml/{mail}").json["_data"]
    assert data["accessPolicy"] == policy
    assert (data["only_moderator_can_post"], data["only_subscriber_can_post"]) == tuple(
        "yes" if flag else "no" for flag in POLICY_FLAGS[policy])


def test_access_policy_on_update(mapi, mlmmjadmin, root_connection, domain):
    mail = f"changing@{domain}"
    assert mapi.post(f"/api/ml/{mail}", {"name": "Changing"}).status_code == 201
    # mlmmjadmin's default: subscribers only (mlmmj enforces it); no accessPolicy on the entry
    assert "accessPolicy" not in read_entry(root_connection, list_dn(mail))
    assert mapi.get(f"/api/ml/{mail}").json["_data"]["accessPolicy"] == "membersonly"
    for policy in ("domain", "moderatorsonly", "subdomain", "membersonly", "public", "domain"):
        result = mapi.put(f"/api/ml/{mail}", {"accessPolicy": policy})
        assert result.status_code == 200, result.text
        entry = read_entry(root_connection, list_dn(mail))
        assert entry["accessPolicy"] == [policy], policy
        assert entry["cn"] == ["Changing"]
        assert posting_flags(mlmmjadmin, mail) == POLICY_FLAGS[policy], policy
        assert mapi.get(f"/api/ml/{mail}").json["_data"]["accessPolicy"] == policy


@pytest.mark.parametrize(("form", "policy", "flags"), [
    # mlmmjadmin alone would write moderatorsonly (the key is present): iRedAPD would stop
    # enforcing "domain"
    ({"only_moderator_can_post": "no"}, "domain", (False, False)),
    ({"only_subscriber_can_post": "no"}, "domain", (False, False)),
    ({"only_subscriber_can_post": "yes"}, "membersonly", (False, True)),
    ({"only_moderator_can_post": "yes", "only_subscriber_can_post": "no"}, "moderatorsonly", (True, False)),
    ({"accessPolicy": "membersonly", "only_subscriber_can_post": "yes"}, "membersonly", (False, True)),
])
def test_posting_flags_keep_the_entry_consistent(mapi, mlmmjadmin, root_connection, domain, form, policy, flags):
    mail = f"flags@{domain}"
    assert mapi.post(f"/api/ml/{mail}", {"accessPolicy": "domain"}).status_code == 201
    result = mapi.put(f"/api/ml/{mail}", form)
    assert result.status_code == 200, result.text
    assert read_entry(root_connection, list_dn(mail))["accessPolicy"] == [policy]
    assert posting_flags(mlmmjadmin, mail) == flags
    # and back to public: the flags off, iRedAPD's value public
    assert mapi.put(f"/api/ml/{mail}", {"only_subscriber_can_post": "no", "only_moderator_can_post": "no"}
                    ).status_code == 200
    expected = policy if policy in ("domain", "subdomain") else "public"
    assert read_entry(root_connection, list_dn(mail))["accessPolicy"] == [expected]


@pytest.mark.parametrize(("form", "param", "code"), [
    ({"accountStatus": "paused"}, "accountStatus", "INVALID_ACCOUNT_STATUS"),
    ({"accessPolicy": "everyone"}, "accessPolicy", "INVALID_ACCESS_POLICY"),
    # iRedAPD would look for mlmmj's subscribers in LDAP (memberOfGroup) and reject them
    ({"accessPolicy": "membersandmoderatorsonly"}, "accessPolicy", "INVALID_ACCESS_POLICY"),
    ({"accessPolicy": "public", "only_subscriber_can_post": "yes"}, "only_subscriber_can_post",
     "CONFLICTING_PARAMETERS"),
    ({"accessPolicy": "membersonly", "only_moderator_can_post": "yes"}, "only_moderator_can_post",
     "CONFLICTING_PARAMETERS"),
])
def test_bad_status_or_policy_changes_nothing(mapi, mlmmjadmin, root_connection, domain, form, param, code):
    mail = f"strict@{domain}"
    result = mapi.post(f"/api/ml/{mail}", {"subscribers": "a@ext.test", "require_confirm": "no", **form})
    assert result.status_code == 400 and result.json["param"] == param and result.json["msg"] == code, result.text
    assert nothing_of(root_connection, mlmmjadmin, mail)
    assert list_count(root_connection, domain) == 0
    assert mapi.post(f"/api/ml/{mail}", {"accessPolicy": "domain", "subject_prefix": "[s]"}).status_code == 201
    before = read_entry(root_connection, list_dn(mail))
    result = mapi.put(f"/api/ml/{mail}", {"subject_prefix": "[changed]", "add_subscribers": "b@ext.test",
                                          "require_confirm": "no", **form})
    assert result.status_code == 400 and result.json["param"] == param and result.json["msg"] == code, result.text
    assert read_entry(root_connection, list_dn(mail)) == before
    assert posting_flags(mlmmjadmin, mail) == (False, False)
    assert mlmmjadmin.mlmmj_list(mail) == []
    assert mapi.get(f"/api/ml/{mail}").json["_data"]["subject_prefix"] == "[s]"


def test_domain_admin_sets_status_and_policy_of_its_lists(mapi, make_app, app_settings, mlmmjadmin, root_connection,
                                                          domain, new_domain):
    """As for old-style lists (/api/maillist): a domain admin manages its domains' lists
    whole, status and policy included, and nothing of another domain's."""
    other = new_domain()
    assert mapi.post(f"/api/domain/{other}").status_code == 201
    assert mapi.post(f"/api/ml/theirs@{other}").status_code == 201
    admin = f"policyadmin@{domain}"
    root_connection.add(f"mail={admin},o=domainAdmins,{SUFFIX}", attributes={
        "objectClass": ["mailAdmin"], "mail": [admin], "userPassword": [_ssha("Admin-Pw-9")],
        "accountStatus": ["active"]})
    root_connection.modify(domain_dn(domain), {"domainAdmin": [(ldap3.MODIFY_ADD, [admin])]})
    client = ApiClient(make_app(**app_settings)).login(admin, "Admin-Pw-9")
    mail = f"own@{domain}"
    assert client.post(f"/api/ml/{mail}", {"accessPolicy": "domain", "accountStatus": "disabled"}).status_code == 201
    entry = read_entry(root_connection, list_dn(mail))
    assert entry["accessPolicy"] == ["domain"] and entry["accountStatus"] == ["disabled"]
    assert client.put(f"/api/ml/{mail}", {"accountStatus": "active"}).status_code == 200
    assert read_entry(root_connection, list_dn(mail))["accountStatus"] == ["active"]
    result = client.put(f"/api/ml/theirs@{other}", {"accountStatus": "disabled", "accessPolicy": "public"})
    assert result.status_code == 403 and result.json["msg"] == "PERMISSION_DENIED", result.text
    entry = read_entry(root_connection, list_dn(f"theirs@{other}"))
    assert entry["accountStatus"] == ["active"] and "accessPolicy" not in entry


def test_iredapd_enforces_status_and_sender_policy(mapi, mlmmjadmin, iredapd_peer, domain, new_domain):
    """The real iRedAPD 6.1 (plugin ldap_maillist_access_policy) reads what we wrote: a disabled
    list is rejected; ``domain`` rejects a sender outside the list's domain; membersonly is left
    to mlmmj (DUNNO here, mlmmj's subonlypost decides)."""
    other = new_domain()
    assert mapi.post(f"/api/domain/{other}").status_code == 201
    mail = f"apd@{domain}"
    assert mapi.post(f"/api/ml/{mail}", {"accessPolicy": "domain"}).status_code == 201
    inside, outside = f"someone@{domain}", f"someone@{other}"
    assert iredapd_peer.ask(sender=inside, recipient=mail) == "DUNNO"
    assert iredapd_peer.ask(sender=outside, recipient=mail) == "REJECT Not authorized"
    assert iredapd_peer.ask(sender="x@ext.test", recipient=mail) == "REJECT Not authorized"
    # a posting flag alone: mlmmjadmin writes accessPolicy moderatorsonly (iRedAPD would then
    # leave the list to mlmmj, which lets anyone post); we put "domain" back
    assert mapi.put(f"/api/ml/{mail}", {"only_moderator_can_post": "no"}).status_code == 200
    assert iredapd_peer.ask(sender=outside, recipient=mail) == "REJECT Not authorized"

    assert mapi.put(f"/api/ml/{mail}", {"accessPolicy": "membersonly"}).status_code == 200
    assert iredapd_peer.ask(sender=outside, recipient=mail) == "DUNNO"
    assert posting_flags(mlmmjadmin, mail) == (False, True)

    assert mapi.put(f"/api/ml/{mail}", {"accountStatus": "disabled"}).status_code == 200
    assert iredapd_peer.ask(sender=inside, recipient=mail) == "REJECT Policy rejection"
    assert mapi.put(f"/api/ml/{mail}", {"accountStatus": "active", "accessPolicy": "subdomain"}).status_code == 200
    assert iredapd_peer.ask(sender=f"a@sub.{domain}", recipient=mail) == "DUNNO"
    assert iredapd_peer.ask(sender=outside, recipient=mail) == "REJECT Not authorized"


def test_disabling_a_list_needs_no_mlmmjadmin(make_app, ldap_server, mailstack, root_connection, new_domain):
    """accountStatus alone is ours to write: it works while mlmmjadmin is down, and Postfix
    stops routing the list; an accessPolicy needs mlmmjadmin (mlmmj's flags) and changes nothing."""
    peer = start_peer(ldap_server)
    try:
        client = ApiClient(make_app(**peer.settings())).login()
        domain = new_domain()
        assert client.post(f"/api/domain/{domain}").status_code == 201
        mail = f"down@{domain}"
        assert client.post(f"/api/ml/{mail}", {"accessPolicy": "domain"}).status_code == 201
        peer.stop()
        assert client.put(f"/api/ml/{mail}", {"accountStatus": "disabled"}).status_code == 200
        assert mailstack.postfix.lookup("transport_maps_user", mail) == []
        result = client.put(f"/api/ml/{mail}", {"accountStatus": "active", "accessPolicy": "membersonly"})
        assert result.status_code == 503 and result.json["msg"] == "SERVICE_UNAVAILABLE", result.text
        entry = read_entry(root_connection, list_dn(mail))
        assert entry["accountStatus"] == ["disabled"] and entry["accessPolicy"] == ["domain"]
    finally:
        peer.close()


def _answer_lost(real):
    """A call mlmmjadmin carries out whose answer never arrives (a timeout, a dropped connection)."""
    from iredapi_ldap import errors

    def call(*args, **kwargs):
        real(*args, **kwargs)
        raise errors.BackendUnavailable(errors.SERVICE_UNAVAILABLE, detail="mlmmjadmin: timed out")

    return call


def test_a_create_whose_answer_is_lost_leaves_the_counter_right(mapi, mlmmjadmin, root_connection, monkeypatch,
                                                                new_domain):
    """mlmmjadmin made the list (its LDAP entry first, then the spool) but its answer was lost:
    the slot is not given back while the list exists (else numberOfLists could be passed by
    every such failure); the create is undone through mlmmjadmin and then the slot goes back, so
    the client's retry creates it."""
    domain = new_domain()
    assert mapi.post(f"/api/domain/{domain}", {"numberOfLists": "1"}).status_code == 201
    client = mapi.app.services.mlmmjadmin
    mail = f"lost@{domain}"
    monkeypatch.setattr(client, "create", _answer_lost(client.create))
    assert mapi.post(f"/api/ml/{mail}").status_code == 503
    monkeypatch.undo()
    lists = count_entries(root_connection, f"ou=Groups,{domain_dn(domain)}", "(objectClass=mailList)")
    assert list_count(root_connection, domain) == lists == 0
    assert nothing_of(root_connection, mlmmjadmin, mail)
    assert mapi.post(f"/api/ml/{mail}").status_code == 201
    assert list_count(root_connection, domain) == 1
    # the same, with the undo failing too: the list stays, and so does its slot
    second = f"second@{domain}"
    assert mapi.delete(f"/api/ml/{mail}").status_code == 200
    monkeypatch.setattr(client, "create", _answer_lost(client.create))
    monkeypatch.setattr(client, "delete", _answer_lost(lambda *a, **k: None))
    assert mapi.post(f"/api/ml/{second}").status_code == 503
    monkeypatch.undo()
    assert read_entry(root_connection, list_dn(second)) is not None
    assert list_count(root_connection, domain) == 1
    result = mapi.post(f"/api/ml/third@{domain}")
    assert result.status_code == 403 and result.json["msg"] == "EXCEEDED_DOMAIN_ACCOUNT_LIMIT", result.text


def test_a_delete_whose_answer_is_lost_gives_the_slot_back(mapi, mlmmjadmin, root_connection, monkeypatch, domain):
    mail = f"gone@{domain}"
    assert mapi.post(f"/api/ml/{mail}").status_code == 201
    before = list_count(root_connection, domain)
    client = mapi.app.services.mlmmjadmin
    monkeypatch.setattr(client, "delete", _answer_lost(client.delete))
    assert mapi.delete(f"/api/ml/{mail}").status_code == 503  # what became of the spool is unknown
    monkeypatch.undo()
    assert nothing_of(root_connection, mlmmjadmin, mail)
    assert list_count(root_connection, domain) == before - 1
    assert mapi.delete(f"/api/ml/{mail}").status_code == 404
    assert list_count(root_connection, domain) == before - 1


def test_a_create_whose_spool_step_fails_leaves_no_entry_and_the_counter_right(mapi, mlmmjadmin, root_connection,
                                                                              new_domain):
    """mlmmjadmin 3.6.3 writes the LDAP entry, then fails making the spool (here: a file where
    the domain's spool directory should be) and answers its error text: the entry it left is
    deleted through it and the slot given back; its text (server paths) stays in our log."""
    domain = new_domain()
    assert mapi.post(f"/api/domain/{domain}", {"numberOfLists": "1"}).status_code == 201
    blocker = mlmmjadmin.spool / domain
    blocker.write_text("not a directory\n")
    try:
        result = mapi.post(f"/api/ml/broken@{domain}")
        assert result.status_code == 502 and result.json["msg"] == "MLMMJADMIN_ERROR", result.text
        assert str(mlmmjadmin.spool) not in result.text
        assert read_entry(root_connection, list_dn(f"broken@{domain}")) is None
        assert list_count(root_connection, domain) == 0
    finally:
        blocker.unlink()
    assert mapi.post(f"/api/ml/broken@{domain}").status_code == 201
    assert list_count(root_connection, domain) == 1


def test_an_address_slapd_cannot_hold_is_refused_before_mlmmjadmin_is_asked(mapi, mlmmjadmin, root_connection):
    """As for the other accounts (tests/test_dn_limits.py): 400 INVALID_MAIL, and neither an entry,
    nor a spool, nor a counter slot."""
    from iredapi_ldap.directory.dn import MAX_RDN_BYTES
    from tests.test_dn_limits import exact_domain

    domain = exact_domain(200)
    assert mapi.post(f"/api/domain/{domain}").status_code == 201
    local = "l" * (MAX_RDN_BYTES - len("mail=@") - len(domain) + 1)
    mail = f"{local}@{domain}"
    client = mapi.app.services.mlmmjadmin
    calls = []
    real = client._call

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    client._call = counted
    try:
        result = mapi.post(f"/api/ml/{mail}", {"name": "x"})
    finally:
        del client._call
    assert result.status_code == 400 and result.json["msg"] == "INVALID_MAIL", result.text
    assert calls == []
    assert nothing_of(root_connection, mlmmjadmin, mail)
    assert list_count(root_connection, domain) == 0


@pytest.mark.parametrize("before", ["membersonly", "moderatorsonly"])
def test_get_tells_the_policy_in_force_after_a_put_that_died_at_mlmmjadmin(mapi, mlmmjadmin, root_connection,
                                                                          iredapd_peer, new_domain, monkeypatch,
                                                                          before):
    """A PUT to a sender policy whose mlmmjadmin call did its work but lost its answer: mlmmj's
    posting flags are off, and the entry holds the member policy mlmmjadmin writes for a flag's key
    (we never got to write ours).  iRedAPD leaves a member policy to mlmmj, mlmmj lets anyone post:
    the list is open, and GET must say so (it said the entry's member policy), until a repeat of
    the PUT finishes the job."""
    domain, other = new_domain(), new_domain()
    for name in (domain, other):
        assert mapi.post(f"/api/domain/{name}").status_code == 201
    mail = f"open@{domain}"
    assert mapi.post(f"/api/ml/{mail}", {"accessPolicy": before}).status_code == 201
    client = mapi.app.services.mlmmjadmin
    monkeypatch.setattr(client, "update", _answer_lost(client.update))
    assert mapi.put(f"/api/ml/{mail}", {"accessPolicy": "domain"}).status_code == 503
    monkeypatch.undo()
    assert posting_flags(mlmmjadmin, mail) == (False, False)
    assert read_entry(root_connection, list_dn(mail))["accessPolicy"] != ["domain"]
    assert iredapd_peer.ask(sender=f"someone@{other}", recipient=mail) == "DUNNO"  # nobody stops it
    assert mapi.get(f"/api/ml/{mail}").json["_data"]["accessPolicy"] == "public"
    assert mapi.put(f"/api/ml/{mail}", {"accessPolicy": "domain"}).status_code == 200  # the repeat
    assert mapi.get(f"/api/ml/{mail}").json["_data"]["accessPolicy"] == "domain"
    assert iredapd_peer.ask(sender=f"someone@{other}", recipient=mail) == "REJECT Not authorized"


def test_two_policy_puts_interleaved_never_leave_the_list_open(mapi, mlmmjadmin, root_connection, iredapd_peer,
                                                               new_domain, monkeypatch):
    """PUT accessPolicy=membersonly has had mlmmjadmin set subonlypost when a PUT accessPolicy=domain
    runs whole (flags off, entry "domain").  The first one's entry write, coming last, would say
    membersonly while no flag backs it: iRedAPD leaves that to mlmmj, mlmmj lets anyone post.  It
    sees the flags are no longer its own (409 CONCURRENT_UPDATE) and leaves the later request's
    policy in force."""
    domain, other = new_domain(), new_domain()
    for name in (domain, other):
        assert mapi.post(f"/api/domain/{name}").status_code == 201
    mail = f"race@{domain}"
    assert mapi.post(f"/api/ml/{mail}", {"accessPolicy": "public"}).status_code == 201
    client = mapi.app.services.mlmmjadmin
    real = client.update

    def update(list_mail, form):
        real(list_mail, form)
        monkeypatch.setattr(client, "update", real)
        assert mapi.put(f"/api/ml/{mail}", {"accessPolicy": "domain"}).status_code == 200  # the other PUT

    monkeypatch.setattr(client, "update", update)
    result = mapi.put(f"/api/ml/{mail}", {"accessPolicy": "membersonly"})
    assert result.status_code == 409 and result.json["msg"] == "CONCURRENT_UPDATE", result.text
    assert posting_flags(mlmmjadmin, mail) == (False, False)
    assert read_entry(root_connection, list_dn(mail))["accessPolicy"] == ["domain"]
    assert mapi.get(f"/api/ml/{mail}").json["_data"]["accessPolicy"] == "domain"
    assert iredapd_peer.ask(sender=f"someone@{other}", recipient=mail) == "REJECT Not authorized"

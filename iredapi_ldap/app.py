"""The Falcon application: services, middleware, error envelope and the route table."""

import logging
from dataclasses import dataclass

import falcon

from . import access, errors
from .directory.base import Directory
from .directory.connection import LdapOperationError
from .resources import (
    admin,
    alias,
    domain,
    domain_admins,
    greylisting,
    ldif,
    login,
    maillist,
    ml,
    spampolicy,
    throttle,
    user,
    verify_password,
    wblist,
)
from .resources.common import UrlParts
from .sessions import LoginThrottle, SessionStore
from .settings import load_settings, sql_url
from .store.engine import SqlStore
from .store.mlmmjadmin import MlmmjadminClient
from .store.schema import create_tables
from .store.tables import amavisd_metadata, iredadmin_metadata, iredapd_metadata

log = logging.getLogger(__name__)


@dataclass
class Services:
    """Everything a resource may call, built once per worker process.

    Connections inside are opened lazily per thread (LDAP) and per process
    (SQL), so building this before gunicorn forks is harmless.
    """

    settings: object
    directory: Directory  # the LDAP client, the tree's naming rules, per-process counter state
    admin_store: SqlStore  # our own tables: sessions, login failures, deleted mailboxes
    iredapd_store: SqlStore  # iRedAPD's database: throttle settings
    sessions: SessionStore
    login_throttle: LoginThrottle
    envelope: "Envelope"
    amavisd_store: SqlStore = None  # Amavisd's database: spam policies, white/blacklists
    mlmmjadmin: MlmmjadminClient = None  # mlmmjadmin's REST API: subscribable (mlmmj) lists


def build_services(settings):
    admin_store = SqlStore(sql_url(settings, "iredadmin"), timeout=settings.SQL_TIMEOUT)
    iredapd_store = SqlStore(sql_url(settings, "iredapd"), timeout=settings.SQL_TIMEOUT)
    amavisd_store = SqlStore(sql_url(settings, "amavisd"), timeout=settings.SQL_TIMEOUT)
    # The embedded SQLite default creates its own tables; on a server the admin
    # creates them (`iredapi-ldap sql-setup`), never a request.
    for store, metadata in ((admin_store, iredadmin_metadata), (iredapd_store, iredapd_metadata),
                            (amavisd_store, amavisd_metadata)):
        if store.dialect_name == "sqlite":
            create_tables(store, metadata)
    return Services(
        settings=settings,
        directory=Directory.from_settings(settings),
        admin_store=admin_store,
        iredapd_store=iredapd_store,
        sessions=SessionStore(admin_store, settings.SESSION_TIMEOUT, settings.SESSION_RECHECK_INTERVAL),
        login_throttle=LoginThrottle(admin_store, settings.LOGIN_MAX_FAILURES, settings.LOGIN_FAILURE_WINDOW),
        envelope=Envelope(settings.API_ENVELOPE),
        amavisd_store=amavisd_store,
        mlmmjadmin=MlmmjadminClient.from_settings(settings) if settings.MLMMJADMIN_API_BASE_URL else None,
    )


# Where the API answers: our own /api/, and iRedAdmin-Pro's /iredadmin/api/, which every Pro
# client and both generations of the official samples are configured with.
MOUNT_POINTS = ("/api", "/iredadmin/api")


def add_routes(app, services):
    """Every URL of the API, top to bottom, served under each of MOUNT_POINTS."""
    domain_item = domain.DomainItem(services)
    user_item = user.UserItem(services)
    spam_policy = spampolicy.SpamPolicy(services)
    alias_item = alias.AliasItem(services)
    maillist_item = maillist.MailListItem(services)
    routes = [
        ("/login", login.Login(services)),
        ("/logout", login.Logout(services)),
        # domains, with their mail routing, and their admins
        ("/domains", domain.DomainCollection(services)),
        ("/domain/{domain}", domain_item),
        ("/domain/{domain}/keep_mailbox_days/{days}", domain_item, "keep_mailbox_days"),
        ("/domain/admins/{domain}", domain_admins.DomainAdmins(services)),
        # accounts: users, aliases, old-style lists, subscribable (mlmmj) lists through mlmmjadmin
        ("/users/{domain}", user.UserCollection(services)),
        ("/user/{mail}", user_item),
        ("/user/{mail}/keep_mailbox_days/{days}", user_item, "keep_mailbox_days"),
        ("/user/{mail}/change_email/{new_mail}", user_item, "change_email"),
        ("/verify_password/user/{mail}", verify_password.VerifyPassword(services, "user")),
        ("/aliases/{domain}", alias.AliasCollection(services)),
        ("/alias/{mail}", alias_item),
        ("/alias/{mail}/change_email/{new_mail}", alias_item, "change_email"),
        ("/maillists/{domain}", maillist.MailListCollection(services)),
        ("/maillist/{mail}", maillist_item),
        ("/maillist/{mail}/change_email/{new_mail}", maillist_item, "change_email"),
        ("/mls/{domain}", ml.MlCollection(services)),
        ("/ml/{mail}", ml.MlItem(services)),
        # standalone admins
        ("/admins", admin.AdminCollection(services)),
        ("/admin/{mail}", admin.AdminItem(services)),
        ("/verify_password/admin/{mail}", verify_password.VerifyPassword(services, "admin")),
        # mail policy: throttling and greylisting (iRedAPD's tables), spam policy and
        # white/blacklists (Amavisd's tables)
        ("/throttle/{target}/{kind}", throttle.ThrottleSetting(services)),
        ("/greylisting/whitelist_spf_domains", greylisting.GreylistingSpfDomains(services)),
        ("/greylisting/{target}", greylisting.GreylistingSetting(services)),
        ("/greylisting/{target}/whitelists", greylisting.GreylistingWhitelists(services)),
        ("/spampolicy/global", spam_policy, "global"),
        ("/spampolicy/domain/{domain}", spam_policy, "domain"),
        ("/spampolicy/user/{mail}", spam_policy, "user"),
        ("/wblist/{direction}/{listname}/{target}", wblist.WbList(services)),
        # LDIF export
        ("/ldif/domain/{domain}", ldif.LdifExport(services, "domain")),
        ("/ldif/catchall/{domain}", ldif.LdifExport(services, "catchall")),
        ("/ldif/admin/{mail}", ldif.LdifExport(services, "admin")),
        ("/ldif/user/{mail}", ldif.LdifExport(services, "user")),
        ("/ldif/maillist/{mail}", ldif.LdifExport(services, "maillist")),
        ("/ldif/alias/{mail}", ldif.LdifExport(services, "alias")),
    ]
    for mount_point in MOUNT_POINTS:
        for template, resource, *suffix in routes:
            app.add_route(mount_point + template, resource, suffix=suffix[0] if suffix else None)


class ApiApp(falcon.App):
    """falcon.App that also carries its Services (tests and the CLI reach them)."""

    services = None


def create_app(settings, services=None):
    services = services or build_services(settings)
    app = ApiApp(
        middleware=[
            access.RequestContext(settings, services.directory),
            access.ApiSwitch(settings),
            access.ClientAllowList(settings),
            access.SessionCheck(settings, services.sessions, services.directory),
            UrlParts(),
            services.envelope,  # only gives Falcon's own OPTIONS answer a JSON body
        ],
    )
    app.resp_options.secure_cookies_by_default = False  # set per request: Secure only over TLS
    app.req_options.strip_url_path_trailing_slash = True
    envelope = services.envelope
    app.add_error_handler(Exception, envelope.unexpected_error)
    app.add_error_handler(falcon.HTTPError, envelope.http_error)
    app.add_error_handler(errors.ApiError, envelope.api_error)
    add_routes(app, services)
    app.services = services
    return app


def get_app():
    """What gunicorn loads: settings from IREDAPI_SETTINGS and the environment."""
    settings = load_settings()
    logging.basicConfig(level=settings.LOG_LEVEL, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return create_app(settings)


class Envelope:
    """The JSON envelope of every answer, in one of three dialects (``API_ENVELOPE``).

    iRedAdmin-Pro's 2016 clients read ``success`` / ``msg`` (and the throttle GET's
    ``setting``); current clients read ``_success`` / ``_msg`` / ``_data``.  "both" (the
    default) serves both generations from one server: both flags and both messages, the
    payload once, as ``_data``.  "pro" and "seed" give one pure dialect.
    """

    def __init__(self, style):
        self.style = style
        self.flag_keys = {"both": ("_success", "success"), "pro": ("_success",), "seed": ("success",)}[style]
        self.msg_keys = tuple(key.replace("success", "msg") for key in self.flag_keys)
        self.data_key = "data" if style == "seed" else "_data"

    def head(self, success):
        return dict.fromkeys(self.flag_keys, success)

    def ok(self, resp, data=None, status=falcon.HTTP_200, legacy=None):
        """``legacy``: {key: value} a 2016 client reads instead of ``_data`` (the throttle GET's
        ``setting``); sent in the "both" and "seed" dialects only."""
        body = self.head(True)
        if data is not None:
            body[self.data_key] = data
        if legacy and self.style != "pro":
            body.update(legacy)
        resp.status = status
        resp.media = body

    def failure_body(self, code, param=None, detail=None):
        body = self.head(False)
        body.update(dict.fromkeys(self.msg_keys, code))
        if param:
            body["param"] = param
        if detail:
            body["detail"] = detail
        return body

    def failure(self, resp, status, code, param=None, detail=None):
        resp.status = falcon.code_to_http_status(status)
        resp.media = self.failure_body(code, param, detail)

    def api_error(self, req, resp, exc, params):
        self.failure(resp, exc.status, exc.code, exc.param, exc.detail)
        if exc.close_connection:
            resp.set_header("Connection", "close")  # carried out by iredapi_ldap.server

    _HTTP_CODES = {404: errors.NOT_FOUND, 405: errors.METHOD_NOT_ALLOWED, 413: errors.MALFORMED_REQUEST}

    def http_error(self, req, resp, exc, params):
        status = exc.status_code
        code = self._HTTP_CODES.get(status, errors.MALFORMED_REQUEST if 400 <= status < 500 else errors.INTERNAL_ERROR)
        if exc.headers:
            resp.set_headers(exc.headers)  # e.g. Allow on 405
        self.failure(resp, status, code, detail=exc.title)

    def process_response(self, req, resp, resource, req_succeeded):
        """Middleware: Falcon answers OPTIONS itself, with no body; every answer is JSON."""
        if (req.method == "OPTIONS" and req_succeeded and resp.media is None and resp.text is None
                and resp.data is None and resp.stream is None):
            resp.delete_header("Content-Length")
            self.ok(resp)

    def unexpected_error(self, req, resp, exc, params):
        if isinstance(exc, LdapOperationError):
            log.error("unexpected LDAP result on %s %s: %s", req.method, req.path, exc)
        else:
            log.exception("unexpected error on %s %s", req.method, req.path)
        self.failure(resp, 500, errors.INTERNAL_ERROR)

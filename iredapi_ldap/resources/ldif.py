"""/api/ldif/{domain,catchall}/<domain> and /api/ldif/{user,alias,maillist,admin}/<mail>:
LDIF export (iRedAdmin-Pro's, LDAP only), for global admins."""

from .. import authorization
from ..directory import export
from .common import Resource

CONTENT_TYPE = "text/plain; charset=utf-8"


class LdifExport(Resource):
    def __init__(self, services, kind):
        super().__init__(services)
        self.kind = kind

    def on_get(self, req, resp, domain=None, mail=None):
        """The entry as RFC 2849 LDIF, streamed; errors (before the first byte) as the envelope."""
        self.params(req)
        authorization.require_global(req.context.admin)
        chunks = export.export(self.directory, self.kind, domain or mail)
        resp.content_type = CONTENT_TYPE
        resp.stream = (chunk.encode("utf-8") for chunk in chunks)

"""Subscribable (mlmmj) mailing lists: what the directory says about them.

mlmmjadmin owns these lists (iredapi_ldap.mlmmj_lists drives it): its ``bk_iredmail_ldap``
backend adds ``mail=<list>,ou=Groups,domainName=<domain>,...`` with ``objectClass: mailList``,
``enabledService: mlmmj`` and ``mtaTransport: mlmmj:<domain>/<name>`` (which Postfix's
transport_maps_user returns), and deletes it.  (It writes ``shadowAddress`` for the domain's
alias domains and ``domainStatus`` only at creation; the alias-domain sweep and the domain
status sweep keep those two in step, as for every account.)  Here we read these entries (to
know whether a list exists, list a domain's lists, and tell whether any exist at all) and write
their ``accountStatus`` and ``accessPolicy``, which mlmmjadmin has no API for
(``set_status_and_policy``).  Old-style
lists (directory/lists.py) are the mailList entries without ``enabledService: mlmmj``.
Both kinds live in ou=Groups and count in the domain's ``domainCurrentListNumber``.
"""

import time

from .. import errors
from . import dn as dnlib
from .connection import ASSERTION_FAILED, MODIFY_REPLACE, NO_SUCH_OBJECT, LdapOperationError

IS_MLMMJ_LIST = dnlib.all_of(dnlib.eq("objectClass", "mailList"), dnlib.eq("enabledService", "mlmmj"))
# What a listing shows of each list (the rest of its profile is mlmmjadmin's, one call per list).
PROFILE_ATTRIBUTES = ["mail", "cn", "accountStatus", "shadowAddress", "mailingListID", "accessPolicy",
                      "maxMessageSize", "listOwner", "listModerator", "mtaTransport"]


def find_list(directory, mail, attributes=("*",)):
    """The mlmmj list's entry, or None."""
    return directory.read(directory.names.mail_list(mail), attributes, IS_MLMMJ_LIST)


def get_list(directory, mail, attributes=("*",)):
    entry = find_list(directory, mail, attributes)
    if entry is None:
        raise errors.NoSuchObject(errors.NO_SUCH_ACCOUNT, detail=mail)
    return entry


def list_lists(directory, domain, attributes=("*",)):
    """The domain's mlmmj lists, page by page."""
    return directory.paged_search(directory.names.ou(domain, dnlib.GROUPS_OU), IS_MLMMJ_LIST, attributes,
                                  scope="one")


def any_list_exists(directory, max_age=0):
    """Whether the server has any mlmmj list (a one-entry page): when it has none, deleting a
    user needs no word with mlmmjadmin, which then need not even run.

    ``max_age`` (seconds) lets a read path reuse this worker's answer of at most that age: a
    user's profile, read far more often than lists are created, then pays no search for a
    feature the server may not use (bench: GET /api/user 3 round trips instead of 4).  Its
    ``mailing_lists`` may miss a first list another worker created in the last seconds;
    deletes and renames always ask (``max_age`` 0), and a create here forgets the answer."""
    now = time.monotonic()
    if max_age > 0:
        seen = directory.hints.get(_ANY_LIST)
        if seen is not None and now - seen[0] <= max_age:
            return seen[1]
    found = next(iter(directory.paged_search(directory.names.basedn, IS_MLMMJ_LIST, ["1.1"], page_size=1)),
                 None) is not None
    directory.hints[_ANY_LIST] = (now, found)
    return found


def forget_whether_lists_exist(directory):
    directory.hints.pop(_ANY_LIST, None)


_ANY_LIST = "any mlmmj list"


def not_old_style(directory, mail):
    """NO_SUCH_ACCOUNT for an old-style list operation on ``mail``; where ``mail`` is an mlmmj
    list, the detail says so: it is mlmmjadmin's, managed through /api/ml only (an old-style
    update, rename or delete would write its entry behind mlmmjadmin's back)."""
    if find_list(directory, mail, ["1.1"]) is not None:
        return errors.NoSuchObject(errors.NO_SUCH_ACCOUNT, detail=f"{mail} is a subscribable (mlmmj) list, "
                                   f"managed by mlmmjadmin: use /api/ml/{mail}")
    return errors.NoSuchObject(errors.NO_SUCH_ACCOUNT, detail=mail)


# -- the two attributes we write on mlmmjadmin's entry (iredapi_ldap.mlmmj_policy) ---------------


def set_status_and_policy(directory, mail, account_status=None, access_policy=None):
    """Replace the list's ``accountStatus`` and/or ``accessPolicy``: the one documented
    exception to "mlmmjadmin owns the entry".  mlmmjadmin has no API for accountStatus (its
    backend writes ``active`` at create and never again) and writes accessPolicy from the mere
    presence of a posting flag; iRedAPD's ldap_maillist_access_policy and Postfix's
    transport_maps_user read both.  Asserted to still be an mlmmj list: a list deleted (or
    replaced by an old-style one) meanwhile is NO_SUCH_ACCOUNT, nothing written."""
    changes = {}
    if account_status is not None:
        changes["accountStatus"] = [(MODIFY_REPLACE, [account_status])]
    if access_policy is not None:
        changes["accessPolicy"] = [(MODIFY_REPLACE, [access_policy])]
    if not changes:
        return
    try:
        directory.modify(directory.names.mail_list(mail), changes, assertion=IS_MLMMJ_LIST)
    except LdapOperationError as exc:
        if exc.result in (NO_SUCH_OBJECT, ASSERTION_FAILED):
            raise errors.NoSuchObject(errors.NO_SUCH_ACCOUNT, detail=mail) from exc
        raise

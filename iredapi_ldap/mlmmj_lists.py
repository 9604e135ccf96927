"""Subscribable (mlmmj) mailing lists, driven through mlmmjadmin.  Nothing here knows HTTP.

The same split as iRedAdmin-Pro: mlmmjadmin owns the list (its LDAP entry, written by its
``bk_iredmail_ldap`` backend, and the mlmmj spool); we validate, authorise (the resources do),
keep the domain's list counter and the one-address-one-account rule, translate parameters and
errors, and never write what it owns.  ``client`` is a ``store.mlmmjadmin.MlmmjadminClient``.

Counter: a create reserves one slot of ``domainCurrentListNumber`` (limits.reserved: the
domain's numberOfLists holds under concurrency, old-style and mlmmj lists together) before
asking mlmmjadmin, and gives it back if mlmmjadmin refuses or cannot be reached; a delete gives
it back after mlmmjadmin removed the list.
"""

import logging

from . import errors, mlmmj_policy
from .directory import admin_limits, alias_domains, references
from .directory import dn as dnlib
from .directory import limits as limitlib
from .directory import mlmmj_lists as directory_lists
from .directory.connection import LdapOperationError
from .store.mlmmjadmin import takes

log = logging.getLogger(__name__)

# Pro's yes/no options -> mlmmjadmin's names (its docs/API.md; Pro's ``is_newsletter`` is
# mlmmjadmin's ``enable_newsletter_subscription``, libs/default_settings.py).
BOOLEAN_OPTIONS = {
    "is_newsletter": "enable_newsletter_subscription",
    "close_list": "close_list",
    "only_moderator_can_post": "only_moderator_can_post",
    "only_subscriber_can_post": "only_subscriber_can_post",
    "disable_subscription": "disable_subscription",
    "disable_subscription_confirm": "disable_subscription_confirm",
    "disable_digest_subscription": "disable_digest_subscription",
    "disable_digest_text": "disable_digest_text",
    "disable_nomail_subscription": "disable_nomail_subscription",
    "moderated": "moderated",
    "moderate_non_subscriber_post": "moderate_non_subscriber_post",
    "disable_retrieving_old_posts": "disable_retrieving_old_posts",
    "only_subscriber_can_get_old_posts": "only_subscriber_can_get_old_posts",
    "disable_retrieving_subscribers": "disable_retrieving_subscribers",
    "disable_send_copy_to_sender": "disable_send_copy_to_sender",
    "notify_owner_when_sub_unsub": "notify_owner_when_sub_unsub",
    "notify_sender_when_moderated": "notify_sender_when_moderated",
    "disable_archive": "disable_archive",
    "moderate_subscription": "moderate_subscription",
}
ADDRESS_OPTIONS = ("extra_addresses", "subscription_moderators", "owner", "moderators")
TEXT_OPTIONS = ("name", "subject_prefix", "footer_text", "footer_html")
OTHER_OPTIONS = ("max_message_size", "custom_headers", "remove_headers")
PROFILE_OPTIONS = (*BOOLEAN_OPTIONS, *ADDRESS_OPTIONS, *TEXT_OPTIONS, *OTHER_OPTIONS)


def profile_form(values):
    """mlmmjadmin's form for the profile options among the API's ``values``."""
    form = {}
    for name, target in BOOLEAN_OPTIONS.items():
        if name in values:
            form[target] = "yes" if values[name] else "no"
    for name in ADDRESS_OPTIONS:
        if name in values:
            form[name] = ",".join(values[name])
    for name in TEXT_OPTIONS:
        if name in values:
            form[name] = values[name]
    if "max_message_size" in values:
        form["max_message_size"] = str(values["max_message_size"])
    if "custom_headers" in values:
        form["custom_headers"] = "\n".join(values["custom_headers"])
    if "remove_headers" in values:
        form["remove_headers"] = ",".join(values["remove_headers"])
    return form


def _domain(mail):
    return mail.split("@", 1)[1]


_ADDRESS_PARAMS = ("subscribers", "add_subscribers", "remove_subscribers", *ADDRESS_OPTIONS)


def check_addresses(mail=None, values=()):
    """400 INVALID_MAIL for a list address (``mail``) or an address parameter in ``values`` that
    mlmmjadmin does not take (``store.mlmmjadmin.takes``): it would answer a create with web.py's
    "not found" (a 503 here) and drop such a subscriber, owner or moderator without a word (a
    success here that did nothing)."""
    if mail is not None and not takes(mail):
        raise errors.InvalidInput(errors.INVALID_MAIL, detail=f"{mail}: mlmmjadmin does not take this address "
                                  "(a name beginning with a letter, digit, _ or -; a top-level domain of 2-15 "
                                  "characters)")
    for param in _ADDRESS_PARAMS:
        refused = [a for a in values.get(param, ()) if not takes(a)]
        if refused:
            raise errors.InvalidInput(errors.INVALID_MAIL, param=param,
                                      detail=f"mlmmjadmin does not take: {', '.join(refused)}")


# -- create, update, delete ----------------------------------------------------------------


def create_list(directory, client, mail, values, domain_entry, admin_limit=admin_limits.no_limit):
    """Create the list ``mail`` with the profile options in ``values`` and subscribe
    ``values["subscribers"]``.  The address must be free among users, aliases and both kinds
    of lists (mail and alias addresses) before mlmmjadmin is asked; slapd's unique overlay
    refuses a racing second add, which mlmmjadmin then reports.

    mlmmjadmin 3.6.3's create (bk_iredmail_ldap.add_maillist) writes ``accessPolicy:
    moderatorsonly`` for ``only_subscriber_can_post``, whatever its value; its update writes
    ``membersonly``.  So the two posting options go in a second call, its PUT; then
    ``accountStatus`` and ``accessPolicy`` are written on the entry (mlmmj_policy.settle;
    ``values`` went through mlmmj_policy.with_posting_flags, as for update_list).

    If that or subscribing fails after mlmmjadmin created the list, the list is deleted again
    (its spool too) so that the whole create failed; if even that delete fails, the list stays
    (with its counter slot) and a PUT can finish the job.
    """
    check_addresses(mail, values)
    domain = _domain(mail)
    # mlmmjadmin writes mail=<list>,ou=Groups,...: an address longer than slapd holds as an entry's
    # name is the 400 it is for every other account (dn.rdn), before mlmmjadmin is asked.
    directory.names.mail_list(mail)
    # mlmmjadmin's create also writes <name>@<alias domain> for each of the domain's alias
    # domains (bk_iredmail_ldap's shadowAddress), all or nothing: each must be free as well.
    wanted = [mail, *alias_domains.shadow_addresses(mail, alias_domains.names_of(domain_entry))]
    lookup = references.lookup_addresses(directory, wanted)
    taken = [address for address in wanted if lookup.account(address) is not None]
    if taken:
        raise errors.AlreadyExists(errors.ALREADY_EXISTS, detail=", ".join(taken))
    form = profile_form(values)
    posting = {name: form.pop(name) for name in _POSTING_OPTIONS if name in form}
    # A normal admin's maxLists (summed over its domains) counts mlmmj lists like old-style ones.
    failure = None
    with admin_limit({limitlib.LISTS: 1}), limitlib.reserved(directory, domain, {limitlib.LISTS: 1}, domain_entry):
        try:
            client.create(mail, form)
            directory_lists.forget_whether_lists_exist(directory)  # this worker shows it at once
        except errors.ApiError as exc:
            # mlmmjadmin writes the LDAP entry first, then the spool: a failed spool step (its
            # error text, MLMMJADMIN_ERROR), or an answer lost after the work was done (a timeout),
            # leaves the entry.  Its slot stays taken while the entry exists, or every such failure
            # would pass numberOfLists.  (Its own codes, ALREADY_EXISTS from a racing create among
            # them, come before or instead of its write: that entry is not ours.)
            if getattr(exc, "status", 500) < 500 or directory_lists.find_list(directory, mail, ["1.1"]) is None:
                raise
            failure = exc
    if failure is not None:
        _undo_create(directory, client, mail)
        raise failure
    subscribers = values.get("subscribers")
    settling = posting or "accountStatus" in values or "accessPolicy" in values
    if not settling and not subscribers:
        return
    try:
        if posting:
            client.update(mail, {"name": form.get("name", ""), **posting})
        if settling:
            mlmmj_policy.settle(directory, client, mail, values)
        if subscribers:
            client.add_subscribers(mail, subscribers, values.get("subscription", "normal"),
                                   values.get("require_confirm", True))
    except (errors.ApiError, LdapOperationError):
        _undo_create(directory, client, mail)
        raise


def _undo_create(directory, client, mail):
    """Have mlmmjadmin delete a list whose create failed after it made the entry, and give its
    slot back once the entry is gone; if the entry stays (mlmmjadmin fails again), so does the
    slot, and a PUT or DELETE can finish the job."""
    try:
        client.delete(mail, keep_archive=False)
    except errors.ApiError:
        if directory_lists.find_list(directory, mail, ["1.1"]) is not None:
            log.error("list %s was created but not finished (posting options, subscribers, or mlmmjadmin's "
                      "answer), and deleting it failed", mail)
            return
    limitlib.release(directory, _domain(mail), {limitlib.LISTS: 1})


_POSTING_OPTIONS = ("only_moderator_can_post", "only_subscriber_can_post")


def update_list(directory, client, entry, values):
    """Profile options first (one mlmmjadmin PUT), then subscribers added and removed.

    mlmmjadmin's LDAP backend (update_maillist) removes the list's ``cn`` from a PUT without
    ``name``, and fails on ``owner`` without ``moderators``; so both are sent as they are
    (read from the list's entry) unless the request changes them."""
    check_addresses(values=values)
    mail = entry.first("mail").lower()
    form = profile_form(values)
    if form:
        form.setdefault("name", entry.first("cn") or "")
        if "owner" in form:
            form.setdefault("moderators", ",".join(v.lower() for v in entry.values("listModerator")))
        client.update(mail, form)
    if {"accountStatus", "accessPolicy", *_POSTING_OPTIONS} & values.keys():
        mlmmj_policy.settle(directory, client, mail, values, entry.first("accessPolicy"))
    if values.get("add_subscribers"):
        client.add_subscribers(mail, values["add_subscribers"], values.get("subscription", "normal"),
                               values.get("require_confirm", True))
    if values.get("remove_subscribers"):
        client.remove_subscribers(mail, values["remove_subscribers"])


def delete_list(directory, client, entry, keep_archive=True, domain_entry=None):
    """References to the list first (forwardings to it, membership of old-style lists, its place
    on other mlmmj lists), then mlmmjadmin deletes the entry and the spool (kept renamed in its
    archive with ``keep_archive``), then the domain's counter gives the slot back.  A repeat after a
    crash between the last two finds no list (404); ``iredapi-ldap recount`` corrects the
    counter."""
    mail = entry.first("mail").lower()
    forget_addresses(directory, client, [mail, *entry.values("shadowAddress")])
    references.remove_references(directory, [mail, *entry.values("shadowAddress")], entry.dn)
    try:
        client.delete(mail, keep_archive=keep_archive)
    except errors.ApiError as exc:
        # mlmmjadmin removes the entry first, then the spool: if the entry went though its answer
        # failed (a failed spool step, a lost answer), the slot goes back now; a repeat finds no list.
        # (Its 404 says another request deleted the list, and gave the slot back.)
        if getattr(exc, "status", None) != 404 and directory_lists.find_list(directory, mail, ["1.1"]) is None:
            limitlib.adjust_counters(directory, _domain(mail), {limitlib.LISTS: -1}, domain_entry)
        raise
    limitlib.adjust_counters(directory, _domain(mail), {limitlib.LISTS: -1}, domain_entry)


# -- reading ---------------------------------------------------------------------------------


def profile(directory, client, entry, with_subscribers=False):
    """mlmmjadmin's profile of the list, with ``mail`` and the entry's ``accountStatus``;
    ``subscribers`` (sorted addresses) with ``with_subscribers``."""
    mail = entry.first("mail").lower()
    data = dict(client.profile(mail) or {})
    data["mail"] = mail
    data["accountStatus"] = entry.first("accountStatus") or "active"
    data["accessPolicy"] = mlmmj_policy.shown_policy(entry, data)
    if with_subscribers:
        data["subscribers"] = client.subscribers(mail)
    return data


def listing_item(entry):
    """One list of ``GET /api/mls/<domain>``: what its entry says (no call per list)."""
    return {
        "mail": entry.first("mail").lower(),
        "name": entry.first("cn") or "",
        "accountStatus": entry.first("accountStatus") or "active",
        "mailingListID": entry.first("mailingListID"),
        "owner": sorted(v.lower() for v in entry.values("listOwner")),
        "moderators": sorted(v.lower() for v in entry.values("listModerator")),
        "max_message_size": int(entry.first("maxMessageSize") or 0),
    }


# How old an answer to "has the server any mlmmj list?" a user's profile may use (see
# directory.mlmmj_lists.any_list_exists).
LIST_HINT_SECONDS = 10


def subscribed_lists(directory, client, mail):
    """The mlmmj lists ``mail`` is subscribed to; none without asking when the server has
    no mlmmj list at all."""
    if not directory_lists.any_list_exists(directory, max_age=LIST_HINT_SECONDS):
        return []
    return client.subscribed_lists(mail)


# -- what deleting a user or a domain does to them ----------------------------------------------


def _unsubscribe(client, addresses):
    """Take ``addresses`` (a deleted account's mail and alias addresses) off every mlmmj list:
    mlmmjadmin tells which (``subscriber/<mail>/subscribed``, all domains).  Harmless to repeat."""
    for address in addresses:
        for list_mail in client.subscribed_lists(address):
            try:
                client.remove_subscribers(list_mail, [address])
            except errors.NoSuchObject:
                pass
            except errors.PeerRefused as exc:
                if exc.status != 404:
                    raise


def delete_domain_lists(directory, client, domain):
    """mlmmjadmin deletes every mlmmj list of the domain (archives kept: a domain delete keeps
    mail data).  Before the domain's entries go; a repeat finds the ones left."""
    for entry in directory_lists.list_lists(directory, domain, ["mail"]):
        try:
            client.delete(entry.first("mail").lower(), keep_archive=True)
        except errors.PeerRefused as exc:
            if exc.status != 404:
                raise


def unsubscribe_domain_everywhere(directory, client, domain, names):
    """Take every address in ``names`` (a deleted domain and its alias domains) off the mlmmj
    lists of other domains: one mlmmjadmin call per such list (its subscribers), one more where
    some go.  Proportional to the server's mlmmj lists, never to the domain's users; a paged
    search; harmless to repeat."""
    suffixes = tuple("@" + name.lower() for name in names)
    outside = dnlib.negate(dnlib.in_dn("domainName", domain))
    lists = directory.paged_search(directory.names.basedn, dnlib.all_of(directory_lists.IS_MLMMJ_LIST, outside),
                                   ["mail"])
    for entry in lists:
        list_mail = entry.first("mail").lower()
        gone = [a for a in client.subscribers(list_mail) if a.endswith(suffixes)]
        if gone:
            client.remove_subscribers(list_mail, gone)


# -- what renaming or deleting an account does to them --------------------------------------------
# An account's address is in an mlmmj list as a subscriber (the spool, mlmmjadmin's only) or as an
# owner or moderator (the spool's control files and the entry's listOwner / listModerator /
# listAllowedUser, both written by mlmmjadmin's PUT).  The directory layer's reference sweeps
# (directory/references.py) leave mlmmj lists alone; these functions ask mlmmjadmin instead.


def check_rename(directory, client, mapping):
    """Before a rename writes anything: 400 INVALID_MAIL (``new_mail``) if an old address is on an
    mlmmj list (subscribed, owner or moderator) and its new one is an address mlmmjadmin does not
    take: moving it would subscribe nothing (mlmmjadmin drops it) and then unsubscribe the old."""
    if not directory_lists.any_list_exists(directory):
        return
    for old, new in mapping.items():
        if takes(new) or not takes(old):
            continue
        named = next(iter(directory.paged_search(directory.names.basedn,
                                                 dnlib.all_of(directory_lists.IS_MLMMJ_LIST, _naming([old])),
                                                 ["1.1"], page_size=1)), None)
        if named is not None or client.subscriptions(old):
            raise errors.InvalidInput(errors.INVALID_MAIL, param="new_mail",
                                      detail=f"{old} is on mlmmj lists, and mlmmjadmin does not take {new}")


def move_subscriptions(directory, client, mapping):
    """A renamed account's addresses ``mapping`` {old: new}: on every mlmmj list where an old one
    is subscribed, the new one is subscribed with the same subscription version and without a
    confirmation request, then the old one unsubscribed.  In that order per list, so that a repeat
    after a crash finds the lists the old address is still on and finishes them."""
    if not directory_lists.any_list_exists(directory):
        return 0
    moved = 0
    for old, new in mapping.items():
        for list_mail, version in client.subscriptions(old):
            try:
                client.add_subscribers(list_mail, [new], version, require_confirm=False)
                client.remove_subscribers(list_mail, [old])
            except errors.PeerRefused as exc:
                if exc.status != 404:  # the list went meanwhile
                    raise
                continue
            moved += 1
    return moved


def _naming(addresses):
    return dnlib.any_of(*(dnlib.eq(attribute, a) for a in addresses
                          for attribute in ("listOwner", "listModerator", "listAllowedUser")))


def replace_owners_and_moderators(directory, client, replace, filter_):
    """On the mlmmj lists matching ``filter_`` (a filter on their entries that finds those naming
    the addresses concerned), have mlmmjadmin rewrite owners and moderators: each address ``a`` of
    its profile becomes ``replace(a)`` (None: removed).  One mlmmjadmin PUT per list that changes
    (owner and moderators together, and the name, which its PUT would otherwise clear); harmless
    to repeat.  Returns the lists changed."""
    changed = []
    for entry in directory.paged_search(directory.names.basedn, dnlib.all_of(directory_lists.IS_MLMMJ_LIST, filter_),
                                        ["mail", "cn"]):
        list_mail = entry.first("mail").lower()
        try:
            data = client.profile(list_mail) or {}
        except errors.PeerRefused as exc:
            if exc.status != 404:
                raise
            continue
        form, changes = {}, False
        for name in ("owner", "moderators"):
            before = [str(a).lower() for a in data.get(name) or []]
            after = list(dict.fromkeys(r for r in (replace(a) for a in before) if r))
            form[name] = ",".join(after)
            changes = changes or before != after
        if not changes:
            continue
        try:
            client.update(list_mail, {"name": entry.first("cn") or "", **form})
        except errors.PeerRefused as exc:
            if exc.status != 404:
                raise
            continue
        changed.append(list_mail)
    return changed


def rename_owner_and_moderator(directory, client, mapping):
    """A renamed account's addresses ``mapping`` {old: new} follow it as owner and moderator."""
    mapping = {old.lower(): new.lower() for old, new in mapping.items()}
    if not mapping:
        return []
    return replace_owners_and_moderators(directory, client, lambda a: mapping.get(a, a), _naming(list(mapping)))


def remove_owner_and_moderator(directory, client, addresses):
    """A deleted account's ``addresses`` are no owner or moderator of any mlmmj list any more."""
    gone = {a.lower() for a in addresses}
    if not gone:
        return []
    return replace_owners_and_moderators(directory, client, lambda a: None if a in gone else a,
                                         _naming(sorted(gone)))


def remove_domain_owners_and_moderators(directory, client, domain, names):
    """A deleted domain's addresses (in its own name and its alias domains' ``names``) are no
    owner or moderator of another domain's mlmmj lists any more (found by substring filters on
    the entries, one search)."""
    suffixes = tuple("@" + name.lower() for name in names)
    outside = dnlib.negate(dnlib.in_dn("domainName", domain))
    naming = dnlib.any_of(*(dnlib.ends_with(attribute, suffix) for suffix in suffixes
                            for attribute in ("listOwner", "listModerator", "listAllowedUser")))
    return replace_owners_and_moderators(directory, client, lambda a: None if a.endswith(suffixes) else a,
                                         dnlib.all_of(outside, naming))


def forget_addresses(directory, client, addresses):
    """A deleted account's ``addresses`` leave every mlmmj list: as subscribers and as owners and
    moderators.  Before its entry goes (a repeat of the delete finds it and does this again)."""
    if not directory_lists.any_list_exists(directory):
        return  # one search: a server without mlmmj lists asks mlmmjadmin nothing
    _unsubscribe(client, addresses)
    remove_owner_and_moderator(directory, client, addresses)

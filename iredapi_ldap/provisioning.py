"""Operations that span the directory and the SQL stores.

Each is ordered so that a retry after a crash half-way finishes the job:
references and records first, the directory entry last.
"""

import logging
import posixpath

from . import authorization, errors, mlmmj_lists
from .directory import alias_domains, domain_admins, references, renames
from .directory import dn as dnlib
from .directory import domains as domain_directory
from .directory import users as user_directory
from .store import amavisd, deleted_mailboxes, dovecot, greylisting, throttle

log = logging.getLogger(__name__)


def maildir_of(entry):
    """A user's maildir: homeDirectory, or the pre-0.9.8 storageBaseDirectory + mailMessageStore."""
    home = entry.first("homeDirectory")
    if home:
        return home
    base, store = entry.first("storageBaseDirectory"), entry.first("mailMessageStore")
    if base and store:
        return posixpath.join(base, store)
    return None


def delete_domain(services, domain, admin, keep_days):
    """Delete a domain and all its accounts; record every user's maildir first.

    Mail on disk is never touched: the records let iRedMail's clean-up tool
    remove the maildirs later (keep_days None or 0 = keep forever).

    References first: every entry of another domain that names one of its accounts
    (domainAdmin, forwardings, list members and moderators, memberOfGroup, external
    members), by their addresses in the domain and its alias domains; then the throttle
    rows, the accounts, the references once more (requests that raced the delete may have
    added some), and the domain entry last, so that a retry after a crash finds it and
    finishes the job.
    """

    def record_mailbox(entry):
        if not entry.has_value("objectClass", "mailUser"):
            return
        maildir = maildir_of(entry)
        mail = entry.first("mail")
        if maildir and mail and not mail.startswith("@"):
            deleted_mailboxes.record_deleted_mailbox(services.admin_store, mail, domain, maildir,
                                                     admin.username, keep_days)

    directory = services.directory
    entry = domain_directory.get_domain(directory, domain, ["domainAliasName", "domainAdmin"])
    names = [domain, *entry.values("domainAliasName")]
    # mlmmjadmin owns the domain's mlmmj lists (entry and spool): it deletes them, first; and
    # the domain's addresses leave the other domains' mlmmj lists.
    if services.mlmmjadmin is not None:
        mlmmj_lists.delete_domain_lists(directory, services.mlmmjadmin, domain)
        mlmmj_lists.unsubscribe_domain_everywhere(directory, services.mlmmjadmin, domain, names)
        mlmmj_lists.remove_domain_owners_and_moderators(directory, services.mlmmjadmin, domain, names)
    references.remove_domain_references(directory, domain, names)
    throttle.delete_settings_for_domain(services.iredapd_store, domain)
    greylisting.delete_for_domain(services.iredapd_store, domain)
    # spam policies, white/blacklists; the alias domains' rows too
    amavisd.delete_domain(services.amavisd_store, domain, names[1:])
    domain_directory.delete_accounts(directory, domain, before_delete=record_mailbox)
    references.remove_domain_references(directory, domain, names)
    # once more: a setting (throttle, greylisting, spam policy, white/blacklist) written for one
    # of its accounts while they were being deleted would be inherited by a later account there
    throttle.delete_settings_for_domain(services.iredapd_store, domain)
    greylisting.delete_for_domain(services.iredapd_store, domain)
    amavisd.delete_domain(services.amavisd_store, domain, names[1:])
    # mail users of other domains that administered only this one are admins no more.
    # Before the domain entry goes, so that a repeat after a crash finds the entry (not a 404)
    # and its domainAdmin values, and finishes this.
    for mail in domain_admins.unmark_idle_users(directory, entry.values("domainAdmin"), excluding=domain):
        services.sessions.end_sessions(mail)
    # Its own users are gone: a global admin among them is out now, not at the next recheck.
    services.sessions.end_sessions_below(directory.names.domain(domain))
    domain_directory.delete_domain(directory, domain, before_delete=record_mailbox)


def delete_user(services, mail, admin, keep_days, domain_entry=None):
    """Delete a user: references first, then the maildir record, then the entry.

    References are to its address and its alias (shadow) addresses: aliases' and
    users' forwardings, lists (``member`` DN; external-member entries), domainAdmin.
    Its list memberships (memberOfGroup) live on its own entry and go with it.
    A retry after a crash half-way finds the entry still there and does the
    remaining steps; each step is harmless to repeat.
    """
    directory = services.directory
    domain = mail.split("@", 1)[1]
    entry = user_directory.get_user(directory, mail, ["mail", "shadowAddress", "mailQuota", "homeDirectory",
                                                      "storageBaseDirectory", "mailMessageStore",
                                                      "domainGlobalAdmin"])
    authorization.require_manageable_account(directory, admin, entry)
    # Its mail values: a second one is the old address of a rename that died after its move
    # (renames.move keeps it until the rest has followed); what is kept under it goes too, or a
    # new account at that address would inherit it.
    mails = list(dict.fromkeys([mail, *(v.lower() for v in entry.values("mail"))]))
    # Off every mlmmj list first (mlmmjadmin keeps subscribers in the spool, not in LDAP).
    # (and no owner or moderator of one: mlmmjadmin rewrites its spool and the list's entry)
    if services.mlmmjadmin is not None:
        mlmmj_lists.forget_addresses(directory, services.mlmmjadmin, [*mails, *entry.values("shadowAddress")])
    references.remove_references(directory, [*mails, *entry.values("shadowAddress")], entry.dn)
    maildir = maildir_of(entry)
    if maildir:
        deleted_mailboxes.record_deleted_mailbox(services.admin_store, mail, domain, maildir, admin.username,
                                                 keep_days)
    throttle.delete_settings_for_accounts(services.iredapd_store, mails)
    greylisting.delete_for_accounts(services.iredapd_store, mails)
    amavisd.delete_accounts(services.amavisd_store, mails)  # spam policy, white/blacklists
    # An admin's sessions end before its entry goes: a repeat of a delete that died after it
    # answers 404 (the caller ends them again after, for a login that raced the delete).
    for address in mails:
        services.sessions.end_sessions(address, except_below=directory.names.admin_basedn)
    user_directory.delete_user_entry(directory, entry, domain_entry)
    # once more: rows a request racing the delete wrote would be a later account's at this address
    throttle.delete_settings_for_accounts(services.iredapd_store, mails)
    greylisting.delete_for_accounts(services.iredapd_store, mails)
    amavisd.delete_accounts(services.amavisd_store, mails)


def rename_account(services, kind, old, new, admin, domain_entry=None):
    """Rename the user, alias or list ``old`` to ``new`` (same domain), everything that names it
    following: the order and why a repeat after a crash finishes the job are in
    ``directory/renames.py``.  The SQL side (iRedAPD's throttle and greylisting rows, Amavisd's
    spam policy and white/blacklists, a renamed admin's open sessions) and mlmmjadmin's side
    (subscriptions, owners, moderators of mlmmj lists) come right after the move, so that a
    repeat, which finds the entry moved, still does it.  Returns whether this request moved the
    entry (False: a repeat of a done rename)."""
    directory = services.directory
    rename = renames.prepare(directory, kind, old, new, domain_entry)
    if kind == renames.USER:
        authorization.require_manageable_account(directory, admin, rename.entry)
    if rename.moved and old not in (v.lower() for v in rename.entry.values("mail")):
        # Done: the entry let go of its old address only after everything had followed
        # (renames.finish_own_entry).  That address may be another account's now (an alias, a
        # standalone admin): a repeat moving what is kept under it (references, SQL rows, mlmmj
        # places) would take that account's forwardings, domainAdmin values, subscriptions.
        return False
    moved_now = not rename.moved
    if moved_now:
        if services.mlmmjadmin is not None:
            mlmmj_lists.check_rename(directory, services.mlmmjadmin, rename.mapping)
        renames.claim(directory, rename)
        renames.references(directory, rename)
        renames.move(directory, rename)
    for before, after in rename.mapping.items():
        throttle.rename_account(services.iredapd_store, before, after)
        # what the newer features keep per address: Amavisd's users row (spam policy,
        # white/blacklists) and its own policy, iRedAPD's greylisting rows
        greylisting.rename_account(services.iredapd_store, before, after)
        amavisd.rename_account(services.amavisd_store, before, after)
    # Amavisd's rows at the alias-domain addresses: the loop moved those of the mapping (the
    # entry's shadowAddress values); this brings the rest to the domain's alias domains
    link_spam_policy_aliases(services, new.split("@", 1)[1], new)
    if services.mlmmjadmin is not None:
        # subscriptions, owners and moderators of mlmmj lists: mlmmjadmin's (subscribe the new
        # address first, then unsubscribe the old: a repeat finds what is left)
        mlmmj_lists.move_subscriptions(directory, services.mlmmjadmin, rename.mapping)
        mlmmj_lists.rename_owner_and_moderator(directory, services.mlmmjadmin, rename.mapping)
    if kind == renames.USER:
        services.sessions.rename_sessions(old, new, rename.new_dn, old_dn=rename.old_dn)
        dovecot.rename_mailbox(services.admin_store, old, new)
    renames.finish_own_entry(directory, rename)
    renames.references(directory, rename)
    return moved_now


def delete_alias_or_list(services, entry, delete, domain_entry=None):
    """Delete an alias or an old-style list (``delete``: aliases.delete_alias or lists.delete_list,
    which take the references out of the directory first): before that, its addresses leave the
    mlmmj lists they are on (mlmmjadmin's), as a deleted user's do."""
    if services.mlmmjadmin is not None:
        mlmmj_lists.forget_addresses(services.directory, services.mlmmjadmin,
                                     [*entry.values("mail"), *entry.values("shadowAddress")])
    delete(services.directory, entry, domain_entry)


# -- Amavisd: spam policies at the alias-domain addresses ----------------------------------------

_SETTLE_ROUNDS = 5


def link_spam_policy_aliases(services, domain, account=None):
    """Bring the Amavisd rows linking the domain's alias-domain addresses to its spam policies
    (``store/amavisd.link_alias_domains``) to the domain's alias domains as they are now: for
    ``account``'s own policy ("@domain" or "user@domain"), or for every policy of the domain.

    Called after the SQL write (a policy PUT, a rename) or the LDAP write (alias domains changed);
    the alias domains are read after it and read once more after the link: if they changed
    meanwhile, the link runs again.  So of a policy write and an alias-domain change racing, the
    later one's link sees the other's write."""
    names = None
    for _ in range(_SETTLE_ROUNDS):
        try:
            entry = domain_directory.get_domain(services.directory, domain, [alias_domains.ATTRIBUTE])
        except errors.NoSuchObject:
            return  # deleted meanwhile: delete_domain takes the rows
        now = sorted(alias_domains.names_of(entry))
        if now == names:
            return
        names = now
        amavisd.link_alias_domains(services.amavisd_store, domain, names, None if account is None else [account])
        if account is None:
            # rows at a newly claimed alias domain still linked to its earlier owner's policies
            amavisd.release_foreign_links(services.amavisd_store, domain, names)


def release_stale_spam_links(services, domain):
    """When ``domain`` was created: Amavisd rows at its addresses that are still linked to another
    domain's policies (it was that domain's alias domain, and the removal's link was lost to a
    crash) are released, or Amavisd would apply the other domain's spam policies to its mail.
    With the Amavisd database down the domain is created all the same (the rest of the API works
    without it); such rows then wait for the domain's first alias-domain change."""
    try:
        amavisd.release_foreign_links(services.amavisd_store, domain, [domain])
    except errors.BackendUnavailable:
        log.warning("Amavisd database down: rows at %s linked to other domains' policies not checked", domain)


# -- SQL writes racing the account's delete -----------------------------------------------------------


def confirm_account_write(services, account, store):
    """After a throttle, greylisting (``store`` "iredapd") or spam policy / white/blacklist
    ("amavisd") write for ``account`` ("@domain" or "user@domain", checked to exist before the
    write; "@." needs nothing): if the account is gone now, its delete ran between that check and the write, and
    both of its clean-up passes came before the write; the rows would be a later account's at
    that name.  They go, and the request is the 404 it would have been a moment later.  An
    address still held as an entry's ``mail`` (a rename half-way keeps its old one until done)
    keeps them: the rename's repeat moves them."""
    if account.startswith("@."):
        return
    target = account[1:] if account.startswith("@") else account
    directory = services.directory
    try:
        if "@" in target:
            user_directory.get_user(directory, target, ["1.1"])
        else:
            domain_directory.get_domain(directory, target, ["1.1"])
        return
    except errors.NoSuchObject:
        if "@" in target and next(iter(directory.paged_search(
                directory.names.basedn, dnlib.eq("mail", target), ["1.1"], page_size=1)), None) is not None:
            raise
        if store == "amavisd":
            if "@" in target:
                amavisd.delete_accounts(services.amavisd_store, [target])
            else:
                amavisd.delete_domain(services.amavisd_store, target)
        elif "@" in target:
            throttle.delete_settings_for_accounts(services.iredapd_store, [target])
            greylisting.delete_for_accounts(services.iredapd_store, [target])
        else:
            throttle.delete_settings_for_domain(services.iredapd_store, target)
            greylisting.delete_for_domain(services.iredapd_store, target)
        raise

"""Mail users in the directory, shaped as iRedAdmin writes them, both on create and on update.

Functions take the API's parameters (validated, canonical names: ``cn``, ``mailQuota`` in MB,
``password`` …), so that every caller — the HTTP resources, a bulk importer — shapes entries
the same way.  Creates and quota changes reserve room in the domain's counters first
(``limits.reserved``) and give it back if anything after fails, so limits hold under
concurrency at a constant number of round trips.  Nothing here knows HTTP.
"""

import time

from .. import errors
from . import admin_limits
from . import dn as dnlib
from . import limits as limitlib
from .alias_domains import addresses_for_new_account, shadow_addresses
from .alias_domains import names_of as alias_domain_names
from .connection import MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE, NO_SUCH_OBJECT, LdapOperationError
from .domains import settle_domain_status
from .entries import (
    add_account_entry,
    delete_entry,
    list_accounts,
    modify_quietly,
    others_with,
    retry_on_conflict,
    value_changes,
)
from .maildir import maildir_path
from .passwords import PasswordPolicy, hash_password
from .references import lookup_addresses

# iRedAdmin's enabledService of a new user.
DEFAULT_SERVICES = (
    "internal", "doveadm", "lib-storage", "indexer-worker", "dsync", "quota-status",
    "mail", "smtp", "smtpsecured", "smtptls", "pop3", "pop3secured", "pop3tls", "imap", "imapsecured", "imaptls",
    "managesieve", "managesievesecured", "managesievetls", "sieve", "sievesecured", "sievetls",
    "deliver", "lda", "lmtp", "recipientbcc", "senderbcc", "forward", "shadowaddress",
    "displayedInGlobalAddressBook", "sogo", "sogowebmail", "sogocalendar", "sogoactivesync",
)
OBJECT_CLASSES = ("inetOrgPerson", "mailUser", "shadowAccount", "amavisAccount")
HIDDEN_ATTRIBUTES = ("userPassword",)
MB = limitlib.MB
MAX_QUOTA_MB = limitlib.MAX_QUOTA_MB

# Single-valued parameters and the attribute each replaces on update; an empty value removes
# an optional attribute, and cn and sn (required by inetOrgPerson) fall back to the local part.
_SIMPLE_ATTRIBUTES = {
    "cn": "cn", "preferredLanguage": "preferredLanguage", "transport": "mtaTransport",
    "employeeid": "employeeNumber", "gn": "givenName", "sn": "sn", "accountStatus": "accountStatus",
    "mailboxFormat": "mailboxFormat", "mailboxFolder": "mailboxFolder", "maildir": "homeDirectory",
    "senderBcc": "userSenderBccAddress", "recipientBcc": "userRecipientBccAddress", "outboundRelay": "senderRelayHost",
}
# A BCC address works only with its service (iRedMail's sender/recipient_bcc_maps_user test it);
# every new user has both, but one may have been taken away.  Removing the address keeps the
# service, which is one of every user's default services.
_BCC_SERVICES = (("senderBcc", "senderbcc"), ("recipientBcc", "recipientbcc"))
_REQUIRED_ATTRIBUTES = ("cn", "sn")
# (reset parameter, add twin, remove twin, multi-valued attribute)
MULTI_VALUED = (
    ("forwarding", "addForwarding", "removeForwarding", "mailForwardingAddress"),
    ("aliases", "addAlias", "removeAlias", "shadowAddress"),
    ("services", "addService", "removeService", "enabledService"),
)
_CAS_ATTEMPTS = 20


def days_since_epoch():
    """shadowLastChange's unit: whole days since 1970-01-01."""
    return int(time.time() // 86400)


def get_user(directory, mail, attributes=("*",)):
    entry = directory.read(directory.names.user(mail), attributes, dnlib.eq("objectClass", "mailUser"))
    if entry is None:
        raise errors.NoSuchObject(errors.NO_SUCH_ACCOUNT, detail=mail)
    return entry


def require_free(directory, addresses, except_dn=None, param=None):
    """ALREADY_EXISTS unless no user, alias or list (other than ``except_dn``) uses
    any of ``addresses`` as mail or shadowAddress; one indexed search."""
    if not addresses:
        return
    lookup = lookup_addresses(directory, addresses)
    taken = [a for a in addresses
             if lookup.account(a) is not None and lookup.account(a).dn.lower() != (except_dn or "").lower()]
    if taken:
        raise errors.AlreadyExists(errors.ALREADY_EXISTS, param=param, detail=", ".join(taken))


def password_hash(directory, values, limits):
    """userPassword from ``password`` (policy-checked, hashed) or ``password_hash`` (as given), or None."""
    if "password" in values and "password_hash" in values:
        raise errors.InvalidInput(errors.CONFLICTING_PARAMETERS, param="password_hash",
                                  detail="give password or password_hash, not both")
    if "password_hash" in values:
        return values["password_hash"]
    if "password" not in values:
        return None
    settings = directory.settings
    PasswordPolicy.from_settings(settings, limits.min_password_length or None,
                                 limits.max_password_length or None).check(values["password"])
    return hash_password(values["password"], settings.DEFAULT_PASSWORD_SCHEME)


# -- create -------------------------------------------------------------------------------------


def create_user(directory, mail, values, domain_entry, admin_limit=admin_limits.no_limit):
    """Add the user ``mail`` from the API's parameters ``values`` under its domain, whose
    entry (with ``limits.DOMAIN_ATTRIBUTES``) was just read, within the domain's limits and
    the creating admin's (``admin_limit``: ``admin_limits.for_admin``)."""
    attributes = new_user_attributes(directory, mail, values, domain_entry)
    quota_bytes = int(attributes.get("mailQuota", ["0"])[0])
    # One search: is the address free, and which of its alias-domain addresses are?
    lookup = lookup_addresses(directory, [mail, *addresses_for_new_account(mail, domain_entry)])
    if lookup.account(mail) is not None:
        raise errors.AlreadyExists(errors.ALREADY_EXISTS, detail=mail)
    shadow = addresses_for_new_account(mail, domain_entry, lookup)
    if shadow:
        attributes["shadowAddress"] = shadow
    domain = mail.split("@", 1)[1]
    deltas = {limitlib.USERS: 1, limitlib.QUOTA_BYTES: quota_bytes}
    with admin_limit(deltas, unlimited_quota=not quota_bytes), limitlib.reserved(directory, domain, deltas,
                                                                                 domain_entry):
        add_account_entry(directory, domain, directory.names.user(mail), attributes)
    settle_domain_status(directory, domain, [directory.names.user(mail)], "domainStatus" in attributes,
                         (directory.names.user(mail), mail, alias_domain_names(domain_entry)))


def new_user_attributes(directory, mail, values, domain_entry):
    """The entry of a new user ``mail`` as iRedAdmin shapes it, from the API's parameters
    (policy-checked password or ready hash; ``mailQuota`` in MB, else the domain's default)."""
    if "password" not in values and "password_hash" not in values:
        raise errors.InvalidInput(errors.INVALID_PARAMETER, param="password", detail="give password or password_hash")
    settings = directory.settings
    limits = limitlib.DomainLimits.of(domain_entry)
    quota_mb = values.get("mailQuota") or limits.default_quota // MB
    if quota_mb > MAX_QUOTA_MB:  # a defaultQuota another tool wrote
        raise errors.InvalidInput(errors.INVALID_NUMBER, param="mailQuota",
                                  detail=f"the domain's defaultQuota ({quota_mb} MB) is above {MAX_QUOTA_MB} MB: "
                                  "give mailQuota")
    quota_bytes = quota_mb * MB
    limits.check_user_quota(quota_bytes)
    local_part = mail.split("@", 1)[0]
    attributes = {
        "objectClass": list(OBJECT_CLASSES),
        "mail": [mail],
        "uid": [local_part],
        "sn": [local_part],
        "cn": [values.get("cn") or local_part],
        "userPassword": [password_hash(directory, values, limits)],
        "homeDirectory": [values.get("maildir") or maildir_path(
            mail, limits.storage_base_directory or settings.storage_base_directory)],
        "accountStatus": ["active"],
        "enabledService": list(DEFAULT_SERVICES),
        "preferredLanguage": [values.get("preferredLanguage") or limits.default_language
                              or settings.default_language],
        "shadowLastChange": [str(days_since_epoch())],
        "amavisLocal": ["TRUE"],
        "mailboxFormat": [values.get("mailboxFormat") or "maildir"],
        "mailboxFolder": [values.get("mailboxFolder") or "Maildir"],
    }
    optional = {"mailQuota": str(quota_bytes) if quota_bytes else None,
                "mtaTransport": values.get("transport"), "employeeNumber": values.get("employeeid"),
                "givenName": values.get("gn"), "sn": values.get("sn"), "accountStatus": values.get("accountStatus")}
    attributes.update({name: [value] for name, value in optional.items() if value})
    for name in ("telephoneNumber", "mobile"):
        if values.get(name):
            attributes[name] = list(values[name])
    if limits.disabled:
        attributes["domainStatus"] = ["disabled"]
    return attributes


# -- update -------------------------------------------------------------------------------------


def check_alias_addresses(mail, values, domain_entry):
    """Per-user alias addresses belong to the user's domain or one of its alias domains."""
    domain = mail.split("@", 1)[1]
    domains = {domain, *(d.lower() for d in domain_entry.values("domainAliasName"))}
    for name in ("aliases", "addAlias"):
        for address in values.get(name, ()):
            if address == mail:
                raise errors.InvalidInput(errors.INVALID_MAIL, param=name, detail="the user's own address")
            if address.split("@", 1)[1] not in domains:
                raise errors.InvalidInput(errors.INVALID_MAIL, param=name,
                                          detail=f"{address} is not in the user's domain or its alias domains")


def update_user(directory, current, values, domain_entry, admin_limit=admin_limits.no_limit):
    """Apply the API's parameters ``values`` to the user whose entry (as read) is ``current``.

    Everything that can be refused is checked before the first write.  A quota change
    reserves the difference in the domain's quota counter and compare-and-sets the user's
    own mailQuota in the same modify as the other changes; if another request changed the
    quota meanwhile, the reservation is given back and the change is retried against the new
    value.  ``domain_entry``: the domain as the caller just read it (with its counters).
    ``admin_limit``: the changing admin's limits (``admin_limits.for_admin``), for a quota change.
    """
    mail = current.first("mail").lower()
    domain = mail.split("@", 1)[1]
    limits = limitlib.DomainLimits.of(domain_entry)
    check_alias_addresses(mail, values, domain_entry)
    _check_bcc_services(values)
    quota_bytes = values["mailQuota"] * MB if "mailQuota" in values else None
    if quota_bytes is not None:
        limits.check_user_quota(quota_bytes)
    replace = _replacements(mail, values, password_hash(directory, values, limits))
    values = _keeping_alias_domain_addresses(mail, _with_bcc_services(values), current, domain_entry)
    new_aliases = values.get("aliases", []) + values.get("addAlias", [])
    param = "aliases" if "aliases" in values else "addAlias"
    require_free(directory, new_aliases, except_dn=current.dn, param=param)
    claimed = _claim_alias_addresses(directory, current, new_aliases, param)
    if claimed:
        values = {name: value for name, value in values.items() if name != "addAlias"}  # done

    def attempt(n):
        entry = current if n == 0 else get_user(directory, mail)
        modification = {attribute: [(MODIFY_REPLACE, list(v))] for attribute, v in replace.items()}
        for reset, add, remove, attribute in MULTI_VALUED:
            operations = value_changes(entry, attribute, values.get(reset), values.get(add, ()),
                                       values.get(remove, ()))
            if operations:
                modification.setdefault(attribute, []).extend(operations)
        delta = 0
        if quota_bytes is not None:
            old_values = entry.values("mailQuota")
            delta = quota_bytes - int(entry.first("mailQuota") or 0)
            operations = ([(MODIFY_DELETE, old_values)] if old_values else []) + (
                [(MODIFY_ADD, [str(quota_bytes)])] if quota_bytes else [])
            if operations:
                modification["mailQuota"] = operations
        if not modification:
            return
        if not delta:
            _modify_user(directory, entry, modification)
            return
        with (admin_limit({limitlib.QUOTA_BYTES: delta}, unlimited_quota=not quota_bytes),
              limitlib.reserved(directory, domain, {limitlib.QUOTA_BYTES: delta}, domain_entry if n == 0 else None)):
            _modify_user(directory, entry, modification)

    # A vanished mailQuota value, or a forwarding, alias or service another request added or
    # removed meanwhile: read the user again and recompute the changes.
    try:
        retry_on_conflict(attempt, "user", attempts=_CAS_ATTEMPTS)
    except BaseException:
        if claimed:  # the rest was refused (a quota limit, a conflict): nothing of the request stays
            modify_quietly(directory, current.dn, {"shadowAddress": [(MODIFY_DELETE, claimed)]})
        raise


def _keeping_alias_domain_addresses(mail, values, current, domain_entry):
    """``values`` whose ``aliases`` reset keeps the addresses the user has from its domain's alias
    domains (``<local part>@<alias domain>``): they come and go with the alias domain, not with
    the user's own alias addresses, and Postfix would stop delivering them."""
    if "aliases" not in values:
        return values
    kept = [a for a in shadow_addresses(mail, alias_domain_names(domain_entry))
            if current.has_value("shadowAddress", a) and a not in values["aliases"]]
    return {**values, "aliases": list(values["aliases"]) + kept} if kept else values


def _check_bcc_services(values):
    """A BCC address with its service removed in the same request: Postfix's user BCC lookups
    require the service, so the address would never be used (as for domains)."""
    removed = {s.lower() for s in values.get("removeService", ())}
    for param, service in _BCC_SERVICES:
        if values.get(param) and service in removed:
            raise errors.InvalidInput(errors.CONFLICTING_PARAMETERS, param="removeService",
                                      detail=f"{param} needs the {service} service")


def _with_bcc_services(values):
    """``values`` with the service of each BCC address it sets among the services to add."""
    needed = [service for param, service in _BCC_SERVICES if values.get(param)]
    if not needed:
        return values
    values = dict(values)
    name = "services" if "services" in values else "addService"
    present = {s.lower() for s in values.get(name, ())}
    values[name] = list(values.get(name, ())) + [s for s in needed if s not in present]
    return values


def _claim_alias_addresses(directory, entry, addresses, param):
    """Add the user's new alias addresses first, alone, then look whether an account was given
    one of them as its mail meanwhile (slapd's unique overlay compares mail with mail and
    shadowAddress with shadowAddress only); if so, take them back: 409, nothing changed.  The
    rest of the request is written after (a repeat of a request that died in between finishes
    it, and a failure of the rest takes them back).  Returns the addresses added."""
    fresh = [a for a in addresses if not entry.has_value("shadowAddress", a)]
    if not fresh:
        return []
    modify_quietly(directory, entry.dn, {"shadowAddress": [(MODIFY_ADD, fresh)]})
    taken = others_with(directory, "mail", fresh, entry.dn)
    if taken:
        modify_quietly(directory, entry.dn, {"shadowAddress": [(MODIFY_DELETE, fresh)]})
        raise errors.AlreadyExists(errors.ALREADY_EXISTS, param=param,
                                   detail=", ".join(sorted({m.lower() for e in taken for m in e.values("mail")})))
    return fresh


def _modify_user(directory, entry, modification):
    try:
        directory.modify(entry.dn, modification)
    except LdapOperationError as exc:
        if exc.result == NO_SUCH_OBJECT:
            raise errors.NoSuchObject(errors.NO_SUCH_ACCOUNT, detail=entry.first("mail")) from None
        raise


def _replacements(mail, values, new_password_hash):
    """{attribute: [values]} that replace what the user has, from the single-valued parameters."""
    local_part = mail.split("@", 1)[0]
    replace = {}
    if new_password_hash:
        replace["userPassword"] = [new_password_hash]
        replace["shadowLastChange"] = [str(days_since_epoch())]
    for name, attribute in _SIMPLE_ATTRIBUTES.items():
        if name in values:
            value = values[name] or (local_part if name in _REQUIRED_ATTRIBUTES else None)
            replace[attribute] = [value] if value else []
    for name in ("telephoneNumber", "mobile"):
        if name in values:
            replace[name] = values[name]
    return replace


# -- what else names the user ----------------------------------------------------------------------

MEMBERSHIP_KEYS = ("managed_domains", "mailing_aliases", "mailing_lists")


def memberships(directory, entry):
    """iRedAdmin-Pro's computed profile keys: ``managed_domains`` (domains whose domainAdmin names
    the user), ``mailing_aliases`` (aliases forwarding to it) and ``mailing_lists`` (old-style lists
    it is a member of, suspended memberships of disabled lists included), sorted addresses.

    One indexed subtree search, whatever the size of the domains."""
    mail = entry.first("mail").lower()
    filter_ = dnlib.any_of(
        dnlib.all_of(dnlib.eq("objectClass", "mailDomain"), dnlib.eq("domainAdmin", mail)),
        dnlib.all_of(dnlib.eq("objectClass", "mailAlias"), dnlib.eq("mailForwardingAddress", mail)),
        dnlib.all_of(dnlib.eq("objectClass", "mailList"), dnlib.eq("member", entry.dn)),
    )
    found = {key: set() for key in MEMBERSHIP_KEYS}
    found["mailing_lists"].update(v.lower() for v in entry.values("memberOfGroup"))
    for other in directory.search(directory.names.basedn, filter_, ["objectClass", "domainName", "mail"]):
        if other.has_value("objectClass", "mailDomain"):
            found["managed_domains"].add(other.first("domainName").lower())
        elif other.has_value("objectClass", "mailAlias"):
            found["mailing_aliases"].add(other.first("mail").lower())
        elif other.first("mail"):
            found["mailing_lists"].add(other.first("mail").lower())
    return {key: sorted(values) for key, values in found.items()}


# -- delete and list ----------------------------------------------------------------------------


def delete_user_entry(directory, entry, domain_entry=None):
    """Delete the user entry and give its slot and quota back to the domain
    (``domain_entry``: as the caller read it, which spares the counters a read)."""
    mail = entry.first("mail").lower()
    delete_entry(directory, entry.dn)
    quota = int(entry.first("mailQuota") or 0)
    limitlib.adjust_counters(directory, mail.split("@", 1)[1], {limitlib.USERS: -1, limitlib.QUOTA_BYTES: -quota},
                             domain_entry)


def list_users(directory, domain, disabled_only=False, attributes=("*",)):
    """The domain's users (not its catch-all), page by page."""
    users = dnlib.all_of(dnlib.eq("objectClass", "mailUser"), dnlib.negate(dnlib.eq("mail", "@" + domain)))
    return list_accounts(directory, domain, dnlib.USERS_OU, users, disabled_only, attributes)


# -- bulk update (PUT /api/users/<domain>) ---------------------------------------------------------

# What a bulk update may set: parameter -> attribute.
BULK_ATTRIBUTES = {"accountStatus": "accountStatus", "preferredLanguage": "preferredLanguage",
                   "transport": "mtaTransport"}
_BULK_READ = ["mail", "shadowAddress", "domainGlobalAdmin", "enabledService", *BULK_ATTRIBUTES.values()]


def bulk_password_hash(directory, values, domain_entry):
    """The one hash a bulk password change writes to every user: checked against the policy
    (and the domain's password lengths) once, hashed once; None without ``password``."""
    if "password" not in values:
        return None
    return password_hash(directory, {"password": values["password"]}, limitlib.DomainLimits.of(domain_entry))


def update_all_users(directory, domain, values, new_password_hash=None, skip=None, page_size=500):
    """Set ``values`` (BULK_ATTRIBUTES' parameters; ``transport`` "" removes the user's own) and
    ``new_password_hash`` on every user of the domain (not its catch-all), page by page.

    Only users whose values differ are written, so a repeat after a crash carries on where the
    first attempt stopped (a password is written again: its hash has a new salt each request).
    ``skip(entry)``: users left alone (a domain admin's reach).  Returns (changed, skipped
    entries, the entries it covers that hold admin rights, changed or already as wanted): the
    caller ends those admins' sessions."""
    changed, skipped, admins = 0, [], []
    users = dnlib.all_of(dnlib.eq("objectClass", "mailUser"), dnlib.negate(dnlib.eq("mail", "@" + domain)))
    for entry in directory.paged_search(directory.names.ou(domain, dnlib.USERS_OU), users, _BULK_READ,
                                        scope="one", page_size=page_size):
        if skip is not None and skip(entry):
            skipped.append(entry)
            continue
        changes = {}
        for name, attribute in BULK_ATTRIBUTES.items():
            if name in values and (entry.first(attribute) or "") != values[name]:
                changes[attribute] = [(MODIFY_REPLACE, [values[name]] if values[name] else [])]
        if new_password_hash:
            changes["userPassword"] = [(MODIFY_REPLACE, [new_password_hash])]
            changes["shadowLastChange"] = [(MODIFY_REPLACE, [str(days_since_epoch())])]
        # every admin the update covers, written now or not: a repeat of an update that died
        # before ending their sessions finds them as wanted already, and must still end them
        if (entry.first("domainGlobalAdmin") or "").lower() == "yes" or entry.has_value("enabledService",
                                                                                        "domainadmin"):
            admins.append(entry)
        if not changes:
            continue
        try:
            directory.modify(entry.dn, changes)
        except LdapOperationError as exc:
            if exc.result == NO_SUCH_OBJECT:
                continue  # deleted meanwhile
            raise
        changed += 1
    return changed, skipped, admins

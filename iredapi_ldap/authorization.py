"""Authorization: may this admin do this to that?  The one place for the answer.

The access middleware (``access.py``) establishes who asks: an ``Admin`` on
``req.context.admin``, global or the admin of the domains whose ``domainAdmin`` names it.
Resources then ask here, before they call the directory layer, whether that admin may act
on what the request names: a domain, an account, a parameter, a member address.  Checks
that need the target's entry reuse the read the request makes anyway; the one extra round
trip is ``require_manageable_account``'s search, for non-global admins only.  Nothing here
knows HTTP; refusals are ``errors.NotPermitted``.
"""

from . import errors
from .directory import admin_limits, alias_domains
from .directory import dn as dnlib
from .directory import domains as domain_directory
from .directory import limits as limitlib
from .store import throttle as throttle_store

# What a domain admin may change on a domain it manages; limits, transport and status are the
# global admin's, or a domain admin could lift its own limits.
DOMAIN_ADMIN_MAY_CHANGE = frozenset({"cn", "preferredLanguage", "defaultQuota", "minPasswordLength",
                                     "maxPasswordLength"})
# User parameters only global admins may set: a maildir path can point into another domain's
# mail on the same disk, so domain admins get the hashed default.  isGlobalAdmin (iRedAdmin-Pro's
# name for domainGlobalAdmin) makes a mail user a global admin.
GLOBAL_ONLY_USER_PARAMETERS = frozenset({"maildir", "isGlobalAdmin", "domainGlobalAdmin"})
# The enabledService that makes a mail user an admin (of the domains whose domainAdmin names it).
ADMIN_SERVICE = "domainadmin"
# accountSetting keys by which a global admin withholds a profile part from domain admins,
# one "key:part" value per part (iRedAdmin's account_setting_list_to_dict).
DISABLED_DOMAIN_PROFILE = "disabledDomainProfile"
DISABLED_USER_PROFILE = "disabledUserProfile"


def require_global(admin):
    if not admin.is_global:
        raise errors.NotPermitted(errors.PERMISSION_DENIED, detail="only global admins may do this")


def _not_your_domain():
    return errors.NotPermitted(errors.PERMISSION_DENIED, detail="you do not manage this domain")


def managed_domain(directory, admin, domain, attributes=("*",)):
    """The domain's entry if the admin manages it.

    For a domain admin a missing domain is PERMISSION_DENIED too, so domain
    admins cannot probe which other domains exist.
    """
    try:
        entry = domain_directory.get_domain(directory, domain, attributes)
    except errors.NoSuchObject:
        if admin.is_global:
            raise
        raise _not_your_domain() from None
    if not admin.manages(entry):
        raise _not_your_domain()
    return entry


def managed_account_domain(directory, admin, mail):
    """The domain entry of the account ``mail``, checked to be managed by ``admin``; it
    carries what limit checks need (``limits.DOMAIN_ATTRIBUTES``), in one round trip."""
    return managed_domain(directory, admin, mail.split("@", 1)[1], limitlib.DOMAIN_ATTRIBUTES)


# Domain and user features a domain admin may change unless a global admin withheld their profile
# tab (iRedAdmin-Pro's tab names, accountSetting disabledDomainProfile / disabledUserProfile).
DOMAIN_PROFILE_TAB_OF = {
    "senderBcc": "bcc", "recipientBcc": "bcc", "outboundRelay": "relay", "catchall": "catchall",
    "aliasDomains": "aliases", "addAliasDomain": "aliases", "removeAliasDomain": "aliases",
    # Pro: "password_policies | Password policies. including min/max password lengths."
    "minPasswordLength": "password_policies", "maxPasswordLength": "password_policies",
}
USER_PROFILE_TAB_OF = {
    # Pro's relay tab is the user's "inbound relay and outbound relay": transport is the inbound one
    "senderBcc": "bcc", "recipientBcc": "bcc", "outboundRelay": "relay", "transport": "relay",
    "forwarding": "forwarding", "addForwarding": "forwarding", "removeForwarding": "forwarding",
    "aliases": "aliases", "addAlias": "aliases", "removeAlias": "aliases",
}


def check_domain_parameters(admin, values, domain_entry=None):
    """A domain admin may change only DOMAIN_ADMIN_MAY_CHANGE of a domain it manages, and the
    DOMAIN_PROFILE_TAB_OF features whose tab the domain's ``disabledDomainProfile`` does not
    list (``domain_entry``: read with accountSetting).  Backup MX, transport, services, limits
    and the profile switches themselves stay with global admins."""
    if admin.is_global:
        return
    withheld = _profile_parts(domain_entry, DISABLED_DOMAIN_PROFILE) if domain_entry is not None else set()
    for name in values:
        tab = DOMAIN_PROFILE_TAB_OF.get(name)
        if tab is not None and tab in withheld:  # also for what a domain admin may change otherwise
            raise errors.NotPermitted(errors.PERMISSION_DENIED, param=name, detail=(
                f"a global admin reserved the {tab} tab to global admins ({DISABLED_DOMAIN_PROFILE})"))
        if tab is None and name not in DOMAIN_ADMIN_MAY_CHANGE:
            raise errors.NotPermitted(errors.PERMISSION_DENIED, param=name,
                                      detail="only global admins may change this")


def check_name_claim(directory, admin, domain, names, param):
    """A normal admin may not make a name its domain's (an alias domain, or a new domain) when
    addresses in that name are used outside the domain: other domains' forwardings, admins, list
    senders, external members, a standalone admin.  Deletes of accounts there take every
    reference to their addresses away, so the name would reach into entries it does not manage.
    Nor a subdomain of another domain's name.  Global admins see the whole directory and decide.
    Three indexed searches at most."""
    if admin.is_global or not names:
        return
    used = alias_domains.used_outside(directory, names, domain)
    if used:
        raise errors.NotPermitted(errors.PERMISSION_DENIED, param=param, detail=(
            f"addresses in {', '.join(used)} are used outside this domain; only global admins may claim it"))
    # Nor a subdomain of a name another domain holds that it does not manage: the parent's
    # owner owns its subdomains (and white/blacklists' "@.parent" entries speak for them).
    parents = {".".join(n.split(".")[i:]) for n in names for i in range(1, n.count("."))}
    if parents:
        filter_ = dnlib.all_of(dnlib.eq("objectClass", "mailDomain"), dnlib.any_of(
            *(dnlib.eq(attribute, p) for p in sorted(parents) for attribute in ("domainName", "domainAliasName"))))
        for entry in directory.search(directory.names.basedn, filter_, ["domainName", "domainAdmin"], scope="one"):
            if not admin.manages(entry) and (entry.first("domainName") or "").lower() != domain:
                raise errors.NotPermitted(errors.PERMISSION_DENIED, param=param, detail=(
                    "a subdomain of a domain hosted here that you do not manage; only global admins may claim it"))


# Domain parameters whose value reaches the mail of every user of the domain: a copy of what
# they send or receive (sender_bcc_maps_domain, recipient_bcc_maps_domain), their outgoing mail
# through a host (sender_dependent_relayhost_maps_domain).
DOMAIN_WIDE_MAIL_PARAMETERS = ("senderBcc", "recipientBcc", "outboundRelay")


def check_domain_wide_mail_access(directory, admin, domain, domain_entry, values):
    """A domain admin may set a domain's BCC or relay host only if it may change every mail user
    of the domain (``require_manageable_account``): no global admin's mailbox, no admin of a
    domain it does not manage.  Else a domain-wide BCC would copy their mail, as the forwarding
    it may not set on them would.  Removing the value is always its to do.  ``domain_entry``:
    read with domainAliasName.  Two or three indexed searches, for domain admins setting one."""
    if admin.is_global:
        return
    given = [name for name in DOMAIN_WIDE_MAIL_PARAMETERS if values.get(name)]
    if not given:
        return
    base = directory.names.domain(domain)
    users = dnlib.eq("objectClass", "mailUser")
    beyond = bool(directory.search(base, dnlib.all_of(users, dnlib.eq("domainGlobalAdmin", "yes")), ["1.1"]))
    if not beyond:
        names = [domain, *(v.lower() for v in domain_entry.values("domainAliasName"))]
        filter_ = dnlib.all_of(dnlib.eq("objectClass", "mailDomain"),
                               dnlib.any_of(*(dnlib.ends_with("domainAdmin", "@" + name) for name in names)))
        suffixes = tuple("@" + name for name in names)
        foreign = sorted({value.lower()
                          for entry in directory.search(directory.names.basedn, filter_, ["domainName", "domainAdmin"],
                                                        scope="one")
                          if not admin.manages(entry)
                          for value in entry.values("domainAdmin") if value.lower().endswith(suffixes)})
        if foreign:
            holders = dnlib.all_of(users, dnlib.any_of(*(dnlib.eq(attribute, a) for a in foreign
                                                          for attribute in ("mail", "shadowAddress"))))
            beyond = bool(directory.search(base, holders, ["1.1"]))
    if beyond:
        raise errors.NotPermitted(errors.PERMISSION_DENIED, param=given[0], detail=(
            "the domain holds mail users you may not change (a global admin, or an admin of domains you do "
            "not manage); a domain-wide BCC or relay host would reach their mail"))


def check_user_profile_tabs(admin, values, domain_entry):
    """A domain admin may not change the user features whose tab the domain's
    ``disabledUserProfile`` lists (``domain_entry``: read with accountSetting)."""
    if admin.is_global:
        return
    withheld = _profile_parts(domain_entry, DISABLED_USER_PROFILE)
    for name in values:
        tab = USER_PROFILE_TAB_OF.get(name)
        if tab is not None and tab in withheld:
            raise errors.NotPermitted(errors.PERMISSION_DENIED, param=name,
                                      detail=f"a global admin reserved the {tab} tab to global admins "
                                             f"({DISABLED_USER_PROFILE})")


# User services Postfix's lookups require for a tab's feature (iRedMail's sender_bcc_maps_user,
# recipient_bcc_maps_user: enabledService=senderbcc / recipientbcc; virtual_alias_maps: a user's
# forwarding needs enabledService=forward): switching one on or off changes that feature.
USER_SERVICE_TAB_OF = {"senderbcc": "bcc", "recipientbcc": "bcc", "forward": "forwarding"}


def check_user_service_tabs(admin, entry, values, domain_entry):
    """A domain admin may not switch on or off (``services``/``addService``/``removeService``)
    a user service that carries the feature of a tab the domain's ``disabledUserProfile``
    withholds: removing ``senderbcc`` would stop a BCC a global admin set.  ``entry``: the user
    as read."""
    if admin.is_global:
        return
    withheld = _profile_parts(domain_entry, DISABLED_USER_PROFILE)
    if not withheld:
        return
    have = {v.lower() for v in entry.values("enabledService")}

    def named(param):
        return {v.lower() for v in values.get(param, ())}

    for service, tab in USER_SERVICE_TAB_OF.items():
        if tab not in withheld:
            continue
        had = service in have
        for param, changed in (("services", "services" in values and (service in named("services")) != had),
                               ("addService", service in named("addService") and not had),
                               ("removeService", service in named("removeService") and had)):
            if changed:
                raise errors.NotPermitted(errors.PERMISSION_DENIED, param=param, detail=(
                    f"the {service} service is part of the {tab} tab a global admin reserved to global admins "
                    f"({DISABLED_USER_PROFILE})"))


def check_user_parameters(admin, values):
    if admin.is_global:
        return
    for name in GLOBAL_ONLY_USER_PARAMETERS:
        if name in values:
            raise errors.NotPermitted(errors.PERMISSION_DENIED, param=name, detail="only global admins may set this")


def require_manageable_account(directory, admin, entry):
    """A non-global admin may change or delete a mail user only if it holds every admin right
    the user holds: not a global admin's entry, nor that of an admin of a domain it does not
    manage (whoever controls the account's password, forwarding or addresses controls its
    admin rights).  ``entry``: the user as read, with mail, shadowAddress and domainGlobalAdmin.

    For non-global admins this costs one one-level search of the domains (domainAdmin is
    indexed); global admins pass without it.
    """
    if admin.is_global:
        return
    if (entry.first("domainGlobalAdmin") or "").lower() == "yes":
        raise errors.NotPermitted(errors.PERMISSION_DENIED_UPDATE_GLOBAL_ADMIN_PROFILE,
                                  detail="this user is a global admin")
    addresses = sorted({v.lower() for v in entry.values("mail") + entry.values("shadowAddress")})
    if not addresses:
        return
    filter_ = dnlib.all_of(dnlib.eq("objectClass", "mailDomain"),
                           dnlib.any_of(*(dnlib.eq("domainAdmin", a) for a in addresses)))
    foreign = sorted(domain.first("domainName") or domain.dn
                     for domain in directory.search(directory.names.basedn, filter_, ["domainName", "domainAdmin"],
                                                    scope="one")
                     if not admin.manages(domain))
    if foreign:
        raise errors.NotPermitted(errors.PERMISSION_DENIED,
                                  detail=f"this user administers domains you do not manage: {', '.join(foreign)}")


def check_admin_service(admin, entry, values):
    """Only global admins make a mail user an admin or take that away: the ``domainadmin``
    service may not appear or disappear through a domain admin's services/addService/removeService.
    ``entry``: the user as read."""
    if admin.is_global:
        return
    had = entry.has_value("enabledService", ADMIN_SERVICE)

    def named(param):
        return any(v.lower() == ADMIN_SERVICE for v in values.get(param, ()))

    changed = [param for param, change in (("services", "services" in values and named("services") != had),
                                           ("addService", named("addService") and not had),
                                           ("removeService", named("removeService") and had)) if change]
    if changed:
        raise errors.NotPermitted(errors.PERMISSION_DENIED, param=changed[0],
                                  detail=f"only global admins may add or remove the {ADMIN_SERVICE} service")


def member_check(admin):
    """The scope of the member addresses a list or alias request names, as a predicate
    ``in_scope(lookup, address)`` for the directory layer's ``classify_members`` (None: every
    address is looked at).

    A domain admin's view stops at the domains it manages: an address elsewhere is an
    external member, whether or not some other hosted domain has it, so the answer never tells
    which accounts exist there; and enrolling an account, which writes memberOfGroup on the
    member's own entry, stays within its domains.  Addresses in its own domains (and their
    alias domains) are checked as for global admins.
    """
    if admin.is_global:
        return None

    def in_scope(lookup, address):
        domain_entry = lookup.domain_entry(address)
        return domain_entry is not None and admin.manages(domain_entry)

    return in_scope


# -- throttling -------------------------------------------------------------------------------


def _profile_parts(domain_entry, key):
    key = key.lower()
    parts = set()
    for item in domain_entry.values("accountSetting"):
        name, sep, value = item.partition(":")
        if sep and name.strip().lower() == key:
            parts.add(value.strip().lower())
    return parts


def _unlimited(limit):
    return limit is None or limit[0] == 0


def _loosened(rule, before, after):
    """The parameter that makes ``after`` looser than ``before`` for one rule, or None.

    A limit is (value, period); None or value 0 is unlimited.  For the per-period rules
    (max_msgs, max_quota) the new one is no looser only if it allows no more per period and
    no higher rate: value_a <= value_b and value_a / period_a <= value_b / period_b.
    """
    if _unlimited(after):
        return None if _unlimited(before) else rule
    if _unlimited(before):
        return None
    (value_b, period_b), (value_a, period_a) = before, after
    if value_a > value_b:
        return rule
    if rule in throttle_store.PERIODIC_RULES and value_a * period_b > value_b * period_a:
        return "period"
    return None


def throttle_guard(admin):
    """The rule for a throttle write by ``admin``, as a callable ``guard(before, after)`` the
    store runs inside the write's transaction (None: no restriction).

    ``before``/``after``: {rule: (value, period) or None}, the limits iRedAPD applies to the
    account (its own row and every broader one: domain, global) now and after the write.  A
    domain admin may make them stricter or leave them, never looser: it cannot lift or loosen
    a limit a global admin set on the account or a broader one, nor delete such a setting.
    iRedAPD's rows record no author, so this holds for its own earlier settings too:
    loosening those is a global admin's job.
    """
    if admin.is_global:
        return None

    def guard(before, after):
        for rule in throttle_store.RULES:
            param = _loosened(rule, before.get(rule), after.get(rule))
            if param is not None:
                raise errors.NotPermitted(
                    errors.PERMISSION_DENIED, param=param,
                    detail=f"this would loosen the {rule} limit in force ({_describe(rule, before.get(rule))}); "
                           "domain admins may only make limits stricter (omitted limits are stored as 0, "
                           "unlimited; -1 inherits)")

    return guard


def _describe(rule, limit):
    if _unlimited(limit):
        return "unlimited"
    value, period = limit
    return f"{value} per {period} s" if rule in throttle_store.PERIODIC_RULES else str(value)


# -- greylisting ------------------------------------------------------------------------------


# -- admins ------------------------------------------------------------------------------------

# What a global admin may not do to its own account: it would lock itself out (the last global
# admin could not be restored through the API).
_OWN_ACCOUNT_CHANGES = {"accountStatus": "disabled", "isGlobalAdmin": False}


def check_own_admin_account(admin, mail, values=None):
    """Refuse a global admin disabling, demoting (``values``) or deleting (``values`` None) the
    account it is logged in with."""
    if mail.lower() != admin.username.lower():
        return
    if values is None:
        raise errors.NotPermitted(errors.PERMISSION_DENIED, detail="you cannot delete your own admin account")
    for name, value in _OWN_ACCOUNT_CHANGES.items():
        if name in values and values[name] == value:
            raise errors.NotPermitted(errors.PERMISSION_DENIED, param=name,
                                      detail="you cannot disable or demote your own admin account")


def check_domain_admin_changes(directory, admin, found, add, remove, remove_all):
    """What a domain admin may change in the admins of a domain it manages (Pro: "normal domain
    admin can only promote mail users under managed domains"): add or remove mail users of
    domains it manages; standalone admins and removeAllAdmins (which would take them out too)
    are the global admins'.  ``found``: domain_admins.find_accounts of the addresses."""
    if admin.is_global:
        return
    if remove_all:
        raise errors.NotPermitted(errors.PERMISSION_DENIED, param="removeAllAdmins",
                                  detail="only global admins may remove all admins of a domain")
    for param, addresses in (("addAdmin", add), ("removeAdmin", remove)):
        for address in addresses:
            if address not in found.users or address in found.standalone:
                raise errors.NotPermitted(errors.PERMISSION_DENIED, param=param,
                                          detail=f"{address}: domain admins may name mail users of their domains only")
            try:
                managed_domain(directory, admin, address.split("@", 1)[1], ["domainAdmin"])
            except errors.NotPermitted as exc:
                exc.param = param
                raise


def require_domain_creator(directory, admin):
    """Global admins create domains, and normal standalone admins whose profile allows it
    (``create_new_domains:yes``, written with maxDomains; iRedAdmin-Pro's "create new domains"
    right).  One base read, for normal admins only."""
    if admin.is_global:
        return
    entry = admin_limits.read_admin(directory, admin)
    if entry is None or not admin_limits.AdminLimits.of(entry).may_create_domains:
        raise errors.NotPermitted(errors.PERMISSION_DENIED,
                                  detail="only global admins and admins given maxDomains may create domains")
# -- Amavisd: spam policy, white/blacklists ---------------------------------------------------


def check_profile_part_change(directory, admin, part, domain_entry, user_entry=None):
    """May ``admin`` change the ``part`` ("throttle", "greylisting", "spampolicy", "wblist") of
    the domain (``user_entry`` None) or of the user ``user_entry`` (read with mail,
    shadowAddress, domainGlobalAdmin)?

    A global admin withholds the part from domain admins with the domain's accountSetting
    ``disabledDomainProfile:<part>`` / ``disabledUserProfile:<part>`` (iRedAdmin-Pro's
    switches), and a user's settings are as protected as the rest of its entry
    (``require_manageable_account``).  ``domain_entry`` is read with accountSetting."""
    if admin.is_global:
        return
    key = DISABLED_DOMAIN_PROFILE if user_entry is None else DISABLED_USER_PROFILE
    if part in _profile_parts(domain_entry, key):
        raise errors.NotPermitted(errors.PERMISSION_DENIED,
                                  detail=f"a global admin reserved this to global admins ({key}:{part})")
    if user_entry is not None:
        require_manageable_account(directory, admin, user_entry)


def bulk_user_skip(directory, admin, domain_entry, keep_own=False):
    """For a bulk update of a domain's users: the predicate ``skip(user entry)`` that leaves out,
    for a domain admin, the users ``require_manageable_account`` would refuse it (global admins,
    and admins of domains it does not manage); with ``keep_own`` (a bulk disable), also the
    account the admin is logged in with, which it would lock itself out of.  None: no one.

    One search, not one per user: the domains whose ``domainAdmin`` names an address in the
    domain or its alias domains (iRedMail indexes domainAdmin for substrings)."""
    own = admin.username.lower()

    def is_own(entry):
        return keep_own and (entry.first("mail") or "").lower() == own

    if admin.is_global:
        return is_own if keep_own else None
    names = [domain_entry.first("domainName"), *domain_entry.values("domainAliasName")]
    filter_ = dnlib.all_of(dnlib.eq("objectClass", "mailDomain"),
                           dnlib.any_of(*(dnlib.ends_with("domainAdmin", "@" + name) for name in names if name)))
    foreign = {value.lower()
               for entry in directory.search(directory.names.basedn, filter_, ["domainName", "domainAdmin"],
                                             scope="one")
               if not admin.manages(entry) for value in entry.values("domainAdmin")}

    def skip(entry):
        if is_own(entry) or (entry.first("domainGlobalAdmin") or "").lower() == "yes":
            return True
        return any(v.lower() in foreign for v in entry.values("mail") + entry.values("shadowAddress"))

    return skip

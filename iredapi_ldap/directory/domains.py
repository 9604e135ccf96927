"""Mail domains in the directory: create, read, update, delete, status.

Entries are shaped as iRedAdmin writes them (iRedAdmin libs/ldaplib/iredldif.py ldif_domain, domain.py).
Nothing here knows HTTP; errors are ``iredapi_ldap.errors`` kinds.
"""

from dataclasses import dataclass, field

from .. import errors
from . import account_settings as keys
from . import alias_domains
from . import dn as dnlib
from .connection import (
    ATTRIBUTE_OR_VALUE_EXISTS,
    ENTRY_ALREADY_EXISTS,
    MODIFY_ADD,
    MODIFY_DELETE,
    MODIFY_REPLACE,
    NO_SUCH_ATTRIBUTE,
    NO_SUCH_OBJECT,
    LdapOperationError,
)
from .entries import (
    delete_quietly,
    delete_subtree,
    ensure_containers,
    modify_quietly,
    replace_value,
    retry_on_conflict,
    undo_add,
)

# Counters iRedAdmin keeps on the domain; we start them at zero so that later
# compare-and-set updates have a value to compare against.
COUNTERS = {
    "domainCurrentUserNumber": "0",
    "domainCurrentAliasNumber": "0",
    "domainCurrentListNumber": "0",
    "domainCurrentQuotaSize": "0",
}

# Objects whose Postfix/Dovecot filters test (!(domainStatus=disabled)).
ACCOUNT_CLASSES_FILTER = dnlib.any_of(
    dnlib.eq("objectClass", "mailUser"), dnlib.eq("objectClass", "mailList"),
    dnlib.eq("objectClass", "mailAlias"), dnlib.eq("objectClass", "mailExternalUser"),
)

# API parameter -> accountSetting key; a 0 removes the key (0 = unlimited/unset).
SETTING_PARAMETERS = {
    "quota": keys.DOMAIN_QUOTA,
    "defaultQuota": keys.DEFAULT_QUOTA,
    "maxUserQuota": keys.MAX_USER_QUOTA,
    "numberOfUsers": keys.NUMBER_OF_USERS,
    "numberOfAliases": keys.NUMBER_OF_ALIASES,
    "numberOfLists": keys.NUMBER_OF_LISTS,
    "minPasswordLength": keys.MIN_PASSWORD_LENGTH,
    "maxPasswordLength": keys.MAX_PASSWORD_LENGTH,
}

_CAS_ATTEMPTS = 8
# Reads of a domain's status after an add (settle_domain_status): one unless it is changing.
_SETTLE_ROUNDS = 3


@dataclass
class DomainChanges:
    """What a create or update asks for; ``None`` means "not given".

    ``settings`` maps accountSetting keys to new values, or to None to remove
    the key.  An empty ``cn`` removes the display name.
    """

    cn: str | None = None
    transport: str | None = None
    account_status: str | None = None
    settings: dict = field(default_factory=dict)

    @classmethod
    def from_params(cls, values):
        """The changes the API's parameters (validated, canonical names) ask for."""
        settings = {key: (values[name] or None) for name, key in SETTING_PARAMETERS.items() if name in values}
        if "preferredLanguage" in values:
            settings[keys.DEFAULT_LANGUAGE] = values["preferredLanguage"]
        return cls(cn=values.get("cn"), transport=values.get("transport"),
                   account_status=values.get("accountStatus"), settings=settings)


def get_domain(directory, domain, attributes=("*",)):
    entry = directory.read(directory.names.domain(domain), attributes, dnlib.eq("objectClass", "mailDomain"))
    if entry is None:
        raise errors.NoSuchObject(errors.NO_SUCH_DOMAIN, detail=domain)
    return entry


def require_not_alias_domain(directory, domain):
    """409 ALREADY_EXISTS if ``domain`` is a hosted domain's alias domain (``domainAliasName``;
    iRedAdmin's is_domain_exists looks at both names).  Postfix's transport_maps_domain.cf asks
    (|(domainName=%s)(domainAliasName=%s)): a second domain by that name would give the alias
    domain two transports, and take its addresses that no user holds.  One indexed search."""
    filter_ = dnlib.all_of(dnlib.eq("objectClass", "mailDomain"), dnlib.eq("domainAliasName", domain))
    if directory.search(directory.names.basedn, filter_, ["1.1"], scope="one"):
        raise errors.AlreadyExists(errors.ALREADY_EXISTS, detail=f"{domain} is an alias domain of a hosted domain")


def create_domain(directory, domain, values, domain_admins=()):
    """Add the domain entry (from the API's parameters ``values``) and its four containers.
    ``domain_admins``: its domainAdmin values (a normal admin that creates a domain manages it).

    If a container cannot be added, the domain entry is removed again, so a
    failed create leaves nothing behind.
    """
    changes = DomainChanges.from_params(values)
    _check_password_lengths(changes.settings, {})
    attributes = {
        "objectClass": ["mailDomain"],
        "domainName": [domain],
        "mtaTransport": [changes.transport or directory.settings.default_mta_transport],
        "enabledService": ["mail"],
        "accountStatus": [changes.account_status or "active"],
        **{name: [value] for name, value in COUNTERS.items()},
    }
    if changes.cn:
        attributes["cn"] = [changes.cn]
    if domain_admins:
        attributes["domainAdmin"] = list(domain_admins)
    settings = [keys.encode(k, v) for k, v in changes.settings.items() if v is not None]
    if settings:
        attributes["accountSetting"] = settings
    domain_dn = directory.names.domain(domain)
    try:
        directory.add(domain_dn, attributes)
    except LdapOperationError as exc:
        if exc.result == ENTRY_ALREADY_EXISTS:
            raise errors.AlreadyExists(errors.ALREADY_EXISTS, detail=domain) from None
        raise
    try:
        # A name is a domain's or an alias domain's, once in the whole directory.  Looked up
        # after the add: a request making the name an alias domain looks after its write too,
        # and whoever finds the other yields.
        alias_domains.require_unclaimed(directory, [domain], domain, None)
        ensure_containers(directory, domain)
    except BaseException:
        undo_add(directory, domain_dn)
        raise


def _check_password_lengths(updates, current):
    """minPasswordLength may not exceed maxPasswordLength, counting the stored value of the
    one the request leaves alone (0 / absent = not set)."""
    def effective(key):
        value = updates[key] if key in updates else keys.integer(current, key)
        return int(value or 0)

    low, high = effective(keys.MIN_PASSWORD_LENGTH), effective(keys.MAX_PASSWORD_LENGTH)
    if low and high and low > high:
        param = "minPasswordLength" if keys.MIN_PASSWORD_LENGTH in updates else "maxPasswordLength"
        raise errors.InvalidInput(errors.INVALID_NUMBER, param=param,
                                  detail=f"minPasswordLength ({low}) would be greater than maxPasswordLength ({high})")


# Attributes update_domain compares and changes (the request reads them once, retries anew).
UPDATE_ATTRIBUTES = ["accountSetting", "domainAdmin", "enabledService", "domainAliasName", "mtaTransport",
                     "domainBackupMX", "accountStatus"]


def update_domain(directory, domain, values, current):
    """Apply the API's parameters ``values`` to the domain whose entry (as read, with
    ``UPDATE_ATTRIBUTES``) is ``current``; returns a ``alias_domains.SweepResult`` when the
    request changed alias domains, else None.

    Everything that can be refused is checked before the first write.  New alias domain names
    are written first, alone, and looked up again (a name is one domain's); then the alias
    domain addresses are swept over the accounts (before the domain loses a name: see
    ``alias_domains``); then the rest in one modify by compare-and-set (accountSetting keys,
    enabledService values), re-read and retried when a concurrent update got there first; then
    the catch-all entry; then a status change propagated to every account, and the accounts
    brought to the alias domains the domain has by then (``alias_domains.catch_up``).  Each is
    harmless to repeat, so a retried request finishes the job.
    """
    changes = DomainChanges.from_params(values)
    _check_password_lengths(changes.settings, keys.parse(current.values("accountSetting")))
    routing = RoutingChanges.from_params(values)
    routing.check(directory, domain, current)
    domain_dn = directory.names.domain(domain)
    plain = {}
    if changes.cn is not None:
        plain["cn"] = replace_value(changes.cn)
    if changes.transport is not None:
        plain["mtaTransport"] = [(MODIFY_REPLACE, [changes.transport])]
    plain.update(routing.plain_changes(directory, current))

    # The keys written, and the password lengths checked against each other.
    relied_on = list(changes.settings)
    if {keys.MIN_PASSWORD_LENGTH, keys.MAX_PASSWORD_LENGTH} & set(relied_on):
        relied_on += [keys.MIN_PASSWORD_LENGTH, keys.MAX_PASSWORD_LENGTH]

    claimed = _claim_alias_domains(directory, domain, current, routing)
    touches_alias_domains = routing.touches_alias_domains()
    # Every name the request asks for is swept, not only the new ones: a repeat finishes the
    # sweep a crashed request began.
    adding = routing.alias_sweep_add(current) if touches_alias_domains else []
    removing = routing.alias_sweep_remove(current) if touches_alias_domains else []
    swept = alias_domains.SweepResult()

    def attempt(n):
        # After a claim the entry as read lacks the names written: read it again.
        entry = current if n == 0 and not claimed else get_domain(directory, domain, UPDATE_ATTRIBUTES)
        if n:
            _check_password_lengths(changes.settings, keys.parse(entry.values("accountSetting")))
        modification = dict(plain)
        modification.update(keys.compare_and_set_changes(entry.values("accountSetting"), changes.settings))
        for operation in routing.setting_operations(entry):
            modification.setdefault("accountSetting", []).append(operation)
        modification.update(routing.value_changes(entry))
        if not modification:
            return []
        try:
            directory.modify(domain_dn, modification, keys.unchanged(entry.values("accountSetting"), relied_on))
        except LdapOperationError as exc:
            if exc.result == NO_SUCH_OBJECT:
                raise errors.NoSuchObject(errors.NO_SUCH_DOMAIN, detail=domain) from None
            raise
        # the alias domain names this write took off the domain (a reset takes the ones another
        # request added after this one read the domain too)
        return [v.lower() for operation, values in modification.get(alias_domains.ATTRIBUTE, ())
                if operation == MODIFY_DELETE for v in values]

    if adding or removing:
        # The accounts before the domain loses a name: a request that dies in between leaves the
        # name on the domain, where its repeat (an aliasDomains reset names no removed name)
        # finds it and sweeps it again.  (The names added are on the domain already: a sweep
        # that fails keeps them there for the repeat.)
        swept.merge(alias_domains.sweep(directory, domain, adding, removing))
    try:
        if changes.account_status is not None:
            set_accounts_domain_status(directory, domain, changes.account_status == "disabled")
            plain["accountStatus"] = [(MODIFY_REPLACE, [changes.account_status])]
        taken_off = retry_on_conflict(attempt, "domain", attempts=_CAS_ATTEMPTS)
    except BaseException:
        if claimed:  # the rest was refused: the new alias domain names go again
            _release_alias_domains(directory, domain, claimed)
        if adding or removing:  # and the accounts follow the domain as it stayed
            alias_domains.catch_up(directory, domain, list(adding) + list(removing))
        raise
    if routing.catchall is not None:
        set_catchall(directory, domain, routing.catchall)
    if changes.account_status is not None:
        # Accounts added by creates that read the domain before the write above and added
        # after the first sweep passed: a create reads the status again after its add
        # (settle_domain_status), so one that still read the old status had added its entry
        # before the write, and this sweep finds it.
        set_accounts_domain_status(directory, domain, changes.account_status == "disabled")
    if not touches_alias_domains:
        return None
    # Accounts a create added between the sweep and the domain write got the removed names'
    # addresses (an indexed search finds them); a racing request may have removed a name this
    # one added, or added back one it removed, after its own sweep: the domain as it is now says.
    # (A name added is swept once more, reading every account and writing what a racing
    # removal took away: half a second for 10,000 accounts, see the README.)
    return swept.merge(alias_domains.catch_up(directory, domain, list(adding) + list(removing) + taken_off))


def _claim_alias_domains(directory, domain, current, routing):
    """Write the new alias domain names (and the domainalias service) alone, then look whether
    another domain took one of them meanwhile; if so take them back: 409, nothing changed.
    Returns the names written."""
    fresh = routing.alias_names_added(current)
    if not fresh:
        return []
    changes = {alias_domains.ATTRIBUTE: [(MODIFY_ADD, fresh)]}
    modify_quietly(directory, directory.names.domain(domain), changes)
    try:
        alias_domains.require_unclaimed(directory, fresh, domain, routing.alias_param())
    except errors.AlreadyExists:
        _release_alias_domains(directory, domain, fresh)
        raise
    return fresh


def _release_alias_domains(directory, domain, names):
    modify_quietly(directory, directory.names.domain(domain), {alias_domains.ATTRIBUTE: [(MODIFY_DELETE, names)]})


# Domain services (iRedAdmin attrs.DOMAIN_ENABLED_SERVICE): what Postfix's domain lookups test.
DOMAIN_SERVICES = ("mail", "domainalias", "senderbcc", "recipientbcc", "self-service")
BACKUP_MX = "domainBackupMX"
# accountSetting keys a request may switch name by name (keys.PROFILE_SWITCHES).
_BCC = (("senderBcc", "domainSenderBccAddress", "senderbcc"),
        ("recipientBcc", "domainRecipientBccAddress", "recipientbcc"))
RELAY_TRANSPORT = "relay:"


@dataclass
class RoutingChanges:
    """The mail-routing part of a domain update (Pro's newest parameters); None / empty: not given."""

    values: dict

    @classmethod
    def from_params(cls, values):
        return cls(values)

    @property
    def catchall(self):
        return self.values.get("catchall")

    def touches_alias_domains(self):
        return any(name in self.values for name in ("aliasDomains", "addAliasDomain", "removeAliasDomain"))

    def alias_param(self):
        return "aliasDomains" if "aliasDomains" in self.values else "addAliasDomain"

    def alias_target(self, entry):
        """The alias domain names the domain has after the request."""
        names = alias_domains.names_of(entry)
        if "aliasDomains" in self.values:
            return list(self.values["aliasDomains"])
        removed = set(self.values.get("removeAliasDomain", ()))
        return [n for n in names if n not in removed] + [
            n for n in self.values.get("addAliasDomain", ()) if n not in names and n not in removed]

    def alias_names_added(self, entry):
        names = set(alias_domains.names_of(entry))
        return [n for n in self.alias_target(entry) if n not in names]

    def alias_sweep_add(self, entry):
        return self.values["aliasDomains"] if "aliasDomains" in self.values else self.values.get("addAliasDomain", [])

    def alias_sweep_remove(self, entry):
        target = set(self.alias_target(entry))
        return sorted((set(alias_domains.names_of(entry)) | set(self.values.get("removeAliasDomain", ()))) - target)

    def check(self, directory, domain, current):
        """Refuse contradictions and names already taken, before any write."""
        values = self.values
        if "transport" in values:
            for name in ("is_backupmx", "primarymx"):
                if name in values:
                    raise errors.InvalidInput(errors.CONFLICTING_PARAMETERS, param=name,
                                              detail="a backup MX's transport is the relay to its primary MX; "
                                                     "do not give transport with it")
        if "primarymx" in values:
            if values.get("is_backupmx") is False:
                raise errors.InvalidInput(errors.CONFLICTING_PARAMETERS, param="primarymx",
                                          detail="primarymx is for a backup MX; is_backupmx=no makes it none")
            if "is_backupmx" not in values and not current.has_value(BACKUP_MX, "yes"):
                raise errors.InvalidInput(errors.INVALID_PARAMETER, param="primarymx",
                                          detail="the domain is not a backup MX; give is_backupmx=yes with it")
        if self.touches_alias_domains():
            param = self.alias_param()
            # (removing the domain's own name would sweep its accounts' own alias addresses away)
            for name_param in ("aliasDomains", "addAliasDomain", "removeAliasDomain"):
                if domain in values.get(name_param, ()):
                    raise errors.InvalidInput(errors.INVALID_DOMAIN_NAME, param=name_param,
                                              detail=f"{domain} is the domain itself")
            added = self.alias_names_added(current)
            if added:
                alias_domains.require_unclaimed(directory, added, domain, param)
        for param, _, service in _BCC:
            if values.get(param) and service in (s.lower() for s in values.get("removeService", ())):
                raise errors.InvalidInput(errors.CONFLICTING_PARAMETERS, param="removeService",
                                          detail=f"{param} needs the {service} service")

    def plain_changes(self, directory, current):
        """Single-valued attributes the request replaces."""
        values = self.values
        plain = {}
        for param, attribute, _ in _BCC:
            if param in values:
                plain[attribute] = replace_value(values[param])
        if "outboundRelay" in values:
            plain["senderRelayHost"] = replace_value(values["outboundRelay"])
        backup = values.get("is_backupmx")
        if backup is True or ("primarymx" in values and backup is None):
            plain[BACKUP_MX] = [(MODIFY_REPLACE, ["yes"])]
            primary = values.get("primarymx")
            if primary is None:  # is_backupmx=yes alone: keep the primary MX it has, if any
                now = current.first("mtaTransport") or ""
                primary = now[len(RELAY_TRANSPORT):] if current.has_value(BACKUP_MX, "yes") and \
                    now.startswith(RELAY_TRANSPORT) else ""
            plain["mtaTransport"] = [(MODIFY_REPLACE, [RELAY_TRANSPORT + primary])]
        elif backup is False and current.has_value(BACKUP_MX, "yes"):
            plain[BACKUP_MX] = [(MODIFY_REPLACE, [])]
            plain["mtaTransport"] = [(MODIFY_REPLACE, [directory.settings.default_mta_transport])]
        return plain

    def value_changes(self, entry):
        """enabledService and domainAliasName changes against ``entry`` as read, by exact value."""
        values = self.values
        changes = {}
        services = [v for v in entry.values("enabledService")]
        wanted = list(values["services"]) if "services" in values else list(services)
        wanted += [s for s in values.get("addService", ())]
        removed = {s.lower() for s in values.get("removeService", ())}
        wanted = [s for s in wanted if s.lower() not in removed]
        # The services Postfix's lookups need along with the attributes this request writes.
        if self.touches_alias_domains():
            alias_service = bool(self.alias_target(entry))
            wanted = [s for s in wanted if s.lower() != alias_domains.SERVICE] + (
                [alias_domains.SERVICE] if alias_service else [])
        for param, _, service in _BCC:
            if param in values:
                wanted = [s for s in wanted if s.lower() != service] + ([service] if values[param] else [])
        have = {s.lower() for s in services}
        wanted = list({s.lower(): s for s in wanted}.values())
        want = {s.lower() for s in wanted}
        operations = []
        gone = [s for s in services if s.lower() not in want]
        if gone:
            operations.append((MODIFY_DELETE, gone))
        new = [s for s in wanted if s.lower() not in have]
        if new:
            operations.append((MODIFY_ADD, new))
        if operations:
            changes["enabledService"] = operations
        if self.touches_alias_domains():
            target = set(self.alias_target(entry))
            gone = [v for v in entry.values(alias_domains.ATTRIBUTE) if v.lower() not in target]
            stored = set(alias_domains.names_of(entry))
            new = [n for n in self.alias_target(entry) if n not in stored]
            operations = ([(MODIFY_DELETE, gone)] if gone else []) + ([(MODIFY_ADD, new)] if new else [])
            if operations:
                changes[alias_domains.ATTRIBUTE] = operations
        return changes

    def setting_operations(self, entry):
        """accountSetting operations of the profile switches (one ``key:name`` value per name)."""
        operations = []
        for disable, enable, key, _ in keys.PROFILE_SWITCHES:
            if disable in self.values or enable in self.values:
                operations += keys.multi_changes(entry.values("accountSetting"), key,
                                                 add=self.values.get(disable, ()), remove=self.values.get(enable, ()))
        return operations


# -- the catch-all account (iRedMail's how-to "ldap.add.catch-all": mail=@domain under ou=Users) --

CATCHALL_NAME = "catch-all"


def catchall_dn(directory, domain):
    return directory.names.user("@" + domain)


def get_catchall(directory, domain):
    """The catch-all's destinations (its mailForwardingAddress), [] if the domain has none."""
    entry = directory.read(catchall_dn(directory, domain), ["mailForwardingAddress"],
                           dnlib.eq("objectClass", "mailUser"))
    return [] if entry is None else sorted(v.lower() for v in entry.values("mailForwardingAddress"))


def set_catchall(directory, domain, destinations):
    """Make the domain's catch-all forward to ``destinations``, adding it if it is missing;
    none removes it.  Postfix's catchall_maps asks for ``@domain`` (and ``@<alias domain>``,
    its shadowAddress) after every other alias map; listings and counters leave it out."""
    dn = catchall_dn(directory, domain)
    if not destinations:
        delete_quietly(directory, dn)
        return
    for _ in range(3):
        try:
            directory.modify(dn, {"mailForwardingAddress": [(MODIFY_REPLACE, list(destinations))]})
            return
        except LdapOperationError as exc:
            if exc.result != NO_SUCH_OBJECT:
                raise
        entry = get_domain(directory, domain, ["accountStatus", alias_domains.ATTRIBUTE])
        disabled = (entry.first("accountStatus") or "active").lower() != "active"
        attributes = {
            "objectClass": ["inetOrgPerson", "mailUser"],
            "mail": ["@" + domain],
            "cn": [CATCHALL_NAME], "sn": [CATCHALL_NAME], "uid": [CATCHALL_NAME],
            "accountStatus": ["active"],
            "mailForwardingAddress": list(destinations),
        }
        shadow = alias_domains.addresses_for_new_account("@" + domain, entry)
        if shadow:
            attributes["shadowAddress"] = shadow
        if disabled:
            attributes["domainStatus"] = ["disabled"]
        try:
            directory.add(dn, attributes)
        except LdapOperationError as exc:
            if exc.result == ENTRY_ALREADY_EXISTS:
                continue  # another request added it: set its destinations
            if exc.result != NO_SUCH_OBJECT:
                raise
            ensure_containers(directory, domain)
            continue
        settle_domain_status(directory, domain, [dn], disabled,
                             (dn, "@" + domain, alias_domains.names_of(entry)))
        return
    raise errors.Conflict(errors.CONCURRENT_UPDATE, detail="the catch-all kept changing; try again")


def routing_view(directory, domain, entry):
    """Pro's routing settings of a domain, readable (GET /api/domain/<domain>), from its entry."""
    transport = entry.first("mtaTransport") or ""
    backup = entry.has_value(BACKUP_MX, "yes")
    settings = entry.values("accountSetting")
    view = {
        "aliasDomains": alias_domains.names_of(entry),
        "catchall": get_catchall(directory, domain),
        "senderBcc": (entry.first("domainSenderBccAddress") or "").lower(),
        "recipientBcc": (entry.first("domainRecipientBccAddress") or "").lower(),
        "outboundRelay": entry.first("senderRelayHost") or "",
        "is_backupmx": "yes" if backup else "no",
        "primarymx": transport[len(RELAY_TRANSPORT):] if backup and transport.startswith(RELAY_TRANSPORT) else "",
        "services": sorted({s.lower() for s in entry.values("enabledService")}),
    }
    for _disable, _enable, key, _names in keys.PROFILE_SWITCHES:
        view[key] = sorted(keys.multi(settings, key))
    return view


def settle_domain_status(directory, domain, dns, disabled, new_account=None):
    """Make the entries ``dns`` a request just added agree with their domain's status.

    They were written with ``domainStatus: disabled`` or without (``disabled``) from a domain
    entry read before the add; a status change may have swept the domain in between and
    missed them.  So the status is read again after the add (one base read) and the entries
    changed if it differs, then read once more in case it changed back meanwhile.  A change
    whose domain write comes after the last read sweeps after its write (update_domain) and
    finds them.  NO_SUCH_DOMAIN if the domain was deleted meanwhile (and the entries with it).

    ``new_account``: (dn, mail, alias domain names the entry was written with), to bring the
    new account's alias-domain addresses to the domain's alias domains in the same read
    (``alias_domains.settle_new_account``; the same argument holds for their sweep).
    """
    for round_ in range(_SETTLE_ROUNDS):
        entry = get_domain(directory, domain, ["accountStatus", alias_domains.ATTRIBUTE])
        if round_ == 0 and new_account is not None:
            alias_domains.settle_new_account(directory, domain, *new_account, domain_entry=entry)
        now = (entry.first("accountStatus") or "active").lower() != "active"
        if now == disabled:
            return
        for dn in dns:
            _set_domain_status(directory, dn, now)
        disabled = now


def _set_domain_status(directory, dn, disabled):
    """Add (or remove) ``domainStatus: disabled`` on one account; already so, or gone, is fine."""
    operation, tolerated = (MODIFY_ADD, ATTRIBUTE_OR_VALUE_EXISTS) if disabled else (MODIFY_DELETE, NO_SUCH_ATTRIBUTE)
    try:
        directory.modify(dn, {"domainStatus": [(operation, ["disabled"])]})
    except LdapOperationError as exc:
        if exc.result not in (tolerated, NO_SUCH_OBJECT):
            raise


def set_accounts_domain_status(directory, domain, disabled):
    """Add (or remove) ``domainStatus: disabled`` on every account of the domain.

    Postfix and Dovecot test the account's domainStatus, not the domain's
    accountStatus (iRedMail's Postfix and Dovecot LDAP queries).  Only accounts not yet in the
    wanted state are touched, page by page.
    """
    wanted = dnlib.eq("domainStatus", "disabled")
    filter_ = dnlib.all_of(ACCOUNT_CLASSES_FILTER, dnlib.negate(wanted) if disabled else wanted)
    count = 0
    for entry in directory.paged_search(directory.names.domain(domain), filter_, ["1.1"]):
        _set_domain_status(directory, entry.dn, disabled)
        count += 1
    return count


def delete_domain(directory, domain, before_delete=None):
    """Delete the domain and everything below it, children first.

    ``before_delete(entry)`` is called for each entry below the domain just
    before it is deleted (see ``entries.delete_subtree``).  A missing domain is
    no error here: callers check existence (and scope) first.
    """
    delete_subtree(directory, directory.names.domain(domain), before_delete)


def delete_accounts(directory, domain, before_delete=None):
    """Delete everything below the domain but not the domain entry (as ``delete_domain``)."""
    delete_subtree(directory, directory.names.domain(domain), before_delete, keep_base=True)


def list_domains(directory, managed_by=None, disabled_only=False, attributes=("*",)):
    """Domains, optionally only those ``managed_by`` (domainAdmin) an admin."""
    parts = [dnlib.eq("objectClass", "mailDomain")]
    if managed_by is not None:
        parts.append(dnlib.eq("domainAdmin", managed_by))
    if disabled_only:
        parts.append(dnlib.eq("accountStatus", "disabled"))
    return directory.paged_search(directory.names.basedn, dnlib.all_of(*parts), attributes, scope="one")

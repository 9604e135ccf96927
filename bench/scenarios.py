"""The scenarios: what wrk sends for request number ``n``, and how many directory round
trips the request needs.  ``bench/raw.py`` has the same requests as bare LDAP and SQL work.

Every scenario gets a counter ``n`` that is unique across all runs of a bench (API and raw
runs take disjoint ranges), so POST-type requests always name new entries and PUTs always
change something.
"""

from dataclasses import dataclass

MAIN = "main.bench"  # users for GET / PUT / throttle, new users are created here
GROUPS = "groups.bench"  # aliases and lists, and the users that join the lists
SMALL = "d100.bench"  # the scale comparison: 100 users ...
BIG = "d100k.bench"  # ... against --users (100,000) users
EXTERNAL = "ext.example.org"  # not hosted: alias members there are external
USERS = 100  # users in MAIN, GROUPS and SMALL
ALIASES = 200
LISTS = 500  # LISTS x USERS distinct (list, member) pairs for list addMember

# A user index that walks every user of a domain of ``count`` users in a spread order
# (7919 is prime and shares no factor with 10^k), so the big domain's reads are not all
# of a few cached entries.
_SPREAD = "local function spread(n, count) return (n * 7919) % count end\n"


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    expected_rt: str  # X-Directory-Round-Trips the request needs
    rt_work: str  # what those round trips are
    lua: str  # Lua defining make(n) -> method, path, body
    op: str  # the raw baseline's function (bench/raw.py)
    domain: str = MAIN
    count: int = USERS  # users in ``domain`` that GET/PUT walk
    sql: str = "sqlite"  # the SQL backend of the run: sqlite or mariadb
    cookie: bool = True


def _lua(body, **values):
    text = _SPREAD + body
    for name, value in values.items():
        text = text.replace("{" + name + "}", str(value))
    return text


def login():
    return Scenario(
        "login", "login", "2", "read the admin entry, bind as it",
        _lua('function make(n) return "POST", "/api/login", '
             '"username=postmaster%40example.com&password=Bench-Admin-Pass-1%21" end\n'),
        "login", cookie=False,
    )


def domain_create():
    return Scenario(
        "domain_create", "domain create", "6",
        "add the domain, look for its name among alias domains, add its 4 ou= containers",
        _lua('function make(n) return "POST", "/api/domain/" .. PREFIX .. "n" .. n .. ".bench", "cn=bench" end\n'),
        "domain_create",
    )


def user_create(domain=MAIN, name="user_create", title="user create"):
    return Scenario(
        name, title, "6", "read domain, search address taken, counter compare-and-set, add, "
        "search for a racing alias address, read domain status",
        _lua('function make(n) return "POST", "/api/user/" .. PREFIX .. "n" .. n .. "@{d}", '
             '"password=Bench-User-Pass-1%21&cn=Bench" end\n', d=domain),
        "user_create", domain,
    )


def user_get(domain=MAIN, count=USERS, name="user_get", title="user GET"):
    return Scenario(
        name, title, "3", "read domain, read user, search what names it (Pro's computed keys)",
        _lua('function make(n) return "GET", "/api/user/u" .. spread(n, {c}) .. "@{d}", nil end\n',
             d=domain, c=count),
        "user_get", domain, count,
    )


def user_put_quota(domain=MAIN, count=USERS, name="user_put_quota", title="user PUT (quota)"):
    # quota = 1 + n MB: n is unique, so every PUT changes the quota (and the domain's counter).
    return Scenario(
        name, title, "4", "read domain, read user, quota counter compare-and-set, modify user",
        _lua('function make(n) return "PUT", "/api/user/u" .. spread(n, {c}) .. "@{d}", "quota=" .. (1 + n) end\n',
             d=domain, c=count),
        "user_put_quota", domain, count,
    )


def alias_add_member():
    return Scenario(
        "alias_add_member", "alias addMember", "4", "read domain, read alias, look up member, modify alias",
        _lua('function make(n) return "PUT", "/api/alias/a" .. (n % {a}) .. "@{g}", '
             '"addMember=" .. PREFIX .. "m" .. n .. "%40{e}" end\n', a=ALIASES, g=GROUPS, e=EXTERNAL),
        "alias_add_member", GROUPS,
    )


def list_add_member():
    # (list, user) pair from n: list = n mod LISTS, user = n div LISTS: new pairs while n < LISTS*USERS.
    return Scenario(
        "list_add_member", "list addMember", "6",
        "read domain, read list, look up member, read membership, member's memberOfGroup, list's member",
        _lua('function make(n) return "PUT", "/api/maillist/l" .. (n % {l}) .. "@{g}", '
             '"addMember=u" .. (math.floor(n / {l}) % {u}) .. "%40{g}" end\n', l=LISTS, u=USERS, g=GROUPS),
        "list_add_member", GROUPS,
    )


def throttle_post(sql):
    return Scenario(
        f"throttle_post_{sql}", f"throttle POST ({'SQLite' if sql == 'sqlite' else 'MariaDB'})", "3",
        "read domain, read user (+ SQL upsert), read user again",
        _lua('function make(n) return "POST", "/api/throttle/u" .. (n % {u}) .. "@{d}/outbound", '
             '"period=3600&max_msgs=" .. (100 + n) end\n', u=USERS, d=MAIN),
        "throttle_post", sql=sql,
    )


def throttle_get(sql):
    return Scenario(
        f"throttle_get_{sql}", f"throttle GET ({'SQLite' if sql == 'sqlite' else 'MariaDB'})", "2",
        "read domain, read user (+ SQL select)",
        _lua('function make(n) return "GET", "/api/throttle/u" .. (n % {u}) .. "@{d}/outbound", nil end\n',
             u=USERS, d=MAIN),
        "throttle_get", sql=sql,
    )


def main_scenarios():
    """In run order: user GET and PUT before list addMember makes the users bigger."""
    return [
        login(), domain_create(), user_create(), user_get(), user_put_quota(), alias_add_member(),
        list_add_member(), throttle_post("sqlite"), throttle_get("sqlite"),
        throttle_post("mariadb"), throttle_get("mariadb"),
    ]


def scale_scenarios(big_count):
    """[(operation, scenario at 100 users, scenario at ``big_count`` users)]."""
    pairs = []
    for operation, make in (("create", user_create), ("get", user_get), ("put", user_put_quota)):
        scenarios = []
        for domain, count, tag in ((SMALL, USERS, "100"), (BIG, big_count, f"{big_count:,}")):
            title = {"create": "user create", "get": "user GET", "put": "user PUT (quota)"}[operation]
            name, title = f"scale_{operation}_{domain}", f"{title} @ {tag} users"
            scenario = make(domain, name=name, title=title) if operation == "create" else make(
                domain, count, name=name, title=title)
            scenarios.append(scenario)
        pairs.append((operation, *scenarios))
    return pairs

"""Directory round trips of every endpoint: one request each, in a domain of its own, with
the X-Directory-Round-Trips header read back and set against what the work needs."""

D = "rt.bench"

# (method, path, form, round trips the work needs, what they are)
REQUESTS = [
    ("POST", "/api/login", {"username": "{admin}", "password": "{password}"}, "2",
     "read the admin entry (standalone admins first; a mail-user admin costs 1 more), bind"),
    ("GET", "/api/domains", None, "1", "one paged search (+1 per 500 domains)"),
    ("POST", f"/api/domain/{D}", {"cn": "RT"}, "6",
     "add the domain, look for another domain with its name as alias domain, add its 4 containers"),
    ("GET", f"/api/domain/{D}", None, "2", "read the domain, read its catch-all"),
    ("PUT", f"/api/domain/{D}", {"cn": "RT 2", "numberOfUsers": "50"}, "2", "read, modify (compare-and-set)"),
    ("POST", f"/api/user/a@{D}", {"password": "{user_password}", "quota": "10"}, "6",
     "read domain, look up the address, counter compare-and-set, add, look for a racing alias address, "
     "read domain status"),
    ("POST", f"/api/user/b@{D}", {"password": "{user_password}"}, "6", "as above"),
    ("GET", f"/api/user/a@{D}", None, "3",
     "read domain, read user, search what names it (Pro's computed keys); +1 once per 10 s per worker with "
     "mlmmjadmin configured: whether the server has mlmmj lists"),
    ("GET", f"/api/user/a@{D}?fields=mail,cn", None, "2", "read domain, read user (fields: no computed keys)"),
    ("PUT", f"/api/user/a@{D}", {"cn": "A"}, "3", "read domain, read user, modify"),
    ("PUT", f"/api/user/a@{D}", {"quota": "20"}, "4", "read domain, read user, quota compare-and-set, modify"),
    ("PUT", f"/api/user/a@{D}", {"addAlias": f"a2@{D}"}, "5",
     "read domain, read user, look up the alias, add it, look for a racing account with that mail"),
    ("GET", f"/api/users/{D}", None, "2", "read domain, one page per 500 users"),
    ("POST", f"/api/alias/al@{D}", {"members": f"a@{D}"}, "6",
     "read domain, look up address and members, counter compare-and-set, add, look for a racing alias address, "
     "read domain status"),
    ("GET", f"/api/alias/al@{D}", None, "2", "read domain, read alias"),
    ("PUT", f"/api/alias/al@{D}", {"addMember": "x@example.org"}, "4",
     "read domain, read alias, look up the member, modify"),
    ("GET", f"/api/aliases/{D}", None, "2", "read domain, one page per 500 aliases"),
    ("POST", f"/api/maillist/l@{D}", {"members": f"a@{D}"}, "7",
     "read domain, look up address and members, counter compare-and-set, add, look for a racing alias address, "
     "member's memberOfGroup, read domain status"),
    ("GET", f"/api/maillist/l@{D}", None, "3", "read domain, read list, read the membership"),
    ("PUT", f"/api/maillist/l@{D}", {"addMember": f"b@{D}"}, "6",
     "read domain, read list, look up the member, read the membership, member's memberOfGroup, list's member"),
    ("GET", f"/api/maillists/{D}", None, "2", "read domain, one page per 500 lists"),
    ("POST", f"/api/throttle/a@{D}/outbound", {"period": "60", "max_msgs": "10"}, "3",
     "read domain, read user (+ SQL), read the user again (a delete that raced the write takes its rows)"),
    ("GET", f"/api/throttle/a@{D}/outbound", None, "2", "read domain, read user (+ SQL)"),
    ("DELETE", f"/api/throttle/a@{D}/outbound", None, "2", "read domain, read user (+ SQL)"),
    ("GET", f"/api/throttle/{D}/outbound", None, "1", "read domain (+ SQL)"),
    ("DELETE", f"/api/maillist/l@{D}", None, "8",
     "read domain, read list, whether the server has mlmmj lists (mlmmjadmin configured), search references, "
     "1 modify per referencing entry (here 2 members), delete, counter compare-and-set"),
    ("DELETE", f"/api/alias/al@{D}", None, "6",
     "read domain, read alias, whether the server has mlmmj lists (mlmmjadmin configured), "
     "search references (none), delete, counter compare-and-set"),
    ("DELETE", f"/api/user/b@{D}", None, "6",
     "read domain, read user, whether the server has mlmmj lists (mlmmjadmin configured), "
     "search references (none), delete, counter compare-and-set"),
    ("DELETE", f"/api/domain/{D}", None, "-",
     "read domain, then one search per container and one delete per entry (here 1 user + 4 containers "
     "+ the domain)"),
    ("POST", "/api/logout", None, "0", "SQL only"),
]


def measure(api_factory, values):
    """Send each request once; [{method, path, status, seen, expected, work}]."""
    api = api_factory()
    rows = []
    for method, path, form, expected, work in REQUESTS:
        if form:
            form = {k: v.format(**values) for k, v in form.items()}
        status, headers, body = api.request(method, path, form)
        seen = next((v for k, v in headers.items() if k.lower() == "x-directory-round-trips"), "-")
        if path == "/api/login" and status == 200:
            cookie = next(v for k, v in headers.items() if k.lower() == "set-cookie")
            api.token = cookie.split(";", 1)[0].split("=", 1)[1]  # logout ends this session only
        rows.append({"method": method, "path": path, "status": status, "seen": seen, "expected": expected,
                     "work": work, "body": body[:200].decode(errors="replace") if status >= 300 else ""})
    api.close()
    return rows


def table(rows):
    lines = ["| request | status | round trips | the work needs | what |", "|---|---:|---:|---:|---|"]
    for row in rows:
        mark = "" if row["expected"] in ("-", row["seen"]) else " ⚠"
        lines.append(f"| {row['method']} {row['path']} | {row['status']} | {row['seen']}{mark} | {row['expected']} "
                     f"| {row['work']} |")
    return "\n".join(lines)

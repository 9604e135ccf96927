"""The results as markdown tables, and the targets checked against them."""

import json
import sys

TARGET_RATIO = 0.70
TARGET_SCALE = 1.2
TARGET_RSS_MIB = 100


def _rt(counts):
    """{"4": 990, "6": 10} -> "4 (99%), 6 (1%)"."""
    total = sum(counts.values())
    if not total:
        return "-"
    items = sorted(counts.items(), key=lambda kv: -kv[1])
    shown = [f"{k}" if v == total else f"{k} ({100 * v / total:.0f}%)" for k, v in items[:3]]
    return ", ".join(shown) + (" …" if len(items) > 3 else "")


def _split(api):
    return "/".join(str(n) for n in api.get("connections_per_worker", [])) or "-"


def _ratio(api, raw):
    return api["rps"] / raw["rps"] if raw and raw.get("rps") else None


def _f(value, digits=1):
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _x(value):
    return "-" if value is None else f"{value:.2f}"


def main_table(runs):
    lines = [
        "| scenario | c | conns per worker | API req/s | p50 ms | p95 ms | p99 ms | errors | worker peak RSS MiB "
        "| round trips seen (expected) | slapd ops/req | ldap3 raw req/s | API/ldap3 | python-ldap raw req/s "
        "| API/python-ldap | raw ldap3 p50 ms | wrk CPU % of a core (of machine) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in runs:
        api = row["api"]
        l3 = row["raw"].get("ldap3")
        pl = row["raw"].get("python-ldap")
        lines.append(
            f"| {row['title']} | {row['concurrency']} | {_split(api)} | {_f(api['rps'])} | {_f(api['p50_ms'], 2)} "
            f"| {_f(api['p95_ms'], 2)} | {_f(api['p99_ms'], 2)} | {api['errors']} | {_f(api['worker_peak_rss_mib'])} "
            f"| {_rt(api['rt'])} ({row['expected_rt']}) | {_f(api.get('slapd_ops_per_request'), 2)} "
            f"| {_f(l3['rps']) if l3 else '-'} | {_x(_ratio(api, l3))} | {_f(pl['rps']) if pl else '-'} "
            f"| {_x(_ratio(api, pl))} | {_f(l3['p50_ms'], 2) if l3 else '-'} "
            f"| {_f(api['cpu_core_pct']['wrk'])} ({_f(api['generator_share_of_machine_pct'])}) |")
    return "\n".join(lines)


def _per_request(pct, rps):
    """CPU ms per request from a % of one core and a rate."""
    return None if pct is None or not rps else pct * 10.0 / rps


def cpu_table(runs, cores=2):
    lines = [
        "| scenario | c | API: workers % | API: slapd % | API: wrk % | API: machine busy % | API: other processes % "
        "| API workers CPU ms/req | ldap3 raw: client % | ldap3 raw: slapd % | ldap3 raw client CPU ms/req "
        "| python-ldap raw: client % | python-ldap raw: slapd % | raw errors (ldap3/python-ldap) "
        "| raw round trips (ldap3) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in runs:
        api = row["api"]
        ours = sum(api["cpu_core_pct"][k] for k in ("workers", "slapd", "wrk"))
        other = max(0.0, api["machine_busy_pct"] * cores - ours)  # % of one core used by anything else
        l3 = row["raw"].get("ldap3") or {}
        pl = row["raw"].get("python-ldap") or {}
        l3_client = l3.get("cpu_core_pct", {}).get("client")
        lines.append(
            f"| {row['title']} | {row['concurrency']} | {_f(api['cpu_core_pct']['workers'])} "
            f"| {_f(api['cpu_core_pct']['slapd'])} | {_f(api['cpu_core_pct']['wrk'])} | {_f(api['machine_busy_pct'])} "
            f"| {_f(other)} | {_f(_per_request(api['cpu_core_pct']['workers'], api['rps']), 2)} "
            f"| {_f(l3_client)} | {_f(l3.get('cpu_core_pct', {}).get('slapd'))} "
            f"| {_f(_per_request(l3_client, l3.get('rps')), 2)} "
            f"| {_f(pl.get('cpu_core_pct', {}).get('client'))} | {_f(pl.get('cpu_core_pct', {}).get('slapd'))} "
            f"| {l3.get('errors', '-')}/{pl.get('errors', '-')} | {_rt(l3.get('rt', {}))} |")
    return "\n".join(lines)


def scale_pairs(scale):
    """[(operation, c, row at 100, row at big)]."""
    by_key = {}
    for row in scale:
        by_key.setdefault((row["operation"], row["concurrency"]), []).append(row)
    pairs = []
    for (operation, concurrency), rows in by_key.items():
        rows.sort(key=lambda r: r["domain_users"])
        if len(rows) == 2:
            pairs.append((operation, concurrency, rows[0], rows[1]))
    return pairs


def scale_table(scale):
    lines = [
        "| operation | c | users | conns per worker (each round) | req/s | p50 ms | p95 ms | p99 ms | errors "
        "| round trips | p50 ratio big/small | p95 ratio | raw ldap3 p50 ms | raw p50 ratio big/small |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for operation, concurrency, small, big in scale_pairs(scale):
        raw_small, raw_big = small["raw"].get("ldap3"), big["raw"].get("ldap3")
        raw_ratio = raw_big["p50_ms"] / raw_small["p50_ms"] if raw_small and raw_big and raw_small["p50_ms"] else None
        for row in (small, big):
            api = row["api"]
            raw = row["raw"].get("ldap3")
            ratio50 = big["api"]["p50_ms"] / small["api"]["p50_ms"] if small["api"]["p50_ms"] else None
            ratio95 = big["api"]["p95_ms"] / small["api"]["p95_ms"] if small["api"]["p95_ms"] else None
            lines.append(
                f"| {operation} | {concurrency} | {row['domain_users']:,} "
                f"| {' '.join('/'.join(map(str, s)) for s in api.get('splits', [])) or '-'} "
                f"| {_f(api['rps'])} | {_f(api['p50_ms'], 2)} "
                f"| {_f(api['p95_ms'], 2)} | {_f(api['p99_ms'], 2)} | {api['errors']} | {_rt(api['rt'])} "
                f"| {_x(ratio50) if row is big else ''} | {_x(ratio95) if row is big else ''} "
                f"| {_f(raw['p50_ms'], 2) if raw else '-'} | {_x(raw_ratio) if row is big and raw else ''} |")
    return "\n".join(lines)


def bulk_table(bulk, runs):
    if not bulk:
        return ""
    api_rate = next((r["api"]["rps"] for r in runs if r["scenario"] == "user_create" and r["concurrency"] == 16),
                    None)
    lines = [
        "| path | users | LDIF s | slapadd s | recount s | total s | users/s | LDIF MiB | data.mdb MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| slapadd -q (offline) | {bulk['users']:,} | {_f(bulk['generate_s'])} | {_f(bulk['slapadd_s'])} "
        f"| {_f(bulk['recount_s'])} | {_f(bulk['total_s'])} | {_f(bulk['users'] / bulk['total_s'], 0)} "
        f"| {_f(bulk['ldif_bytes'] / 2**20)} | {_f(bulk['db_bytes'] / 2**20)} |",
    ]
    if api_rate:
        lines.append(f"| POST /api/user at c=16 (estimated from the user create run) | {bulk['users']:,} | - | - | - "
                     f"| {_f(bulk['users'] / api_rate)} | {_f(api_rate, 0)} | - | - |")
    return "\n".join(lines)


def listing_table(listing):
    if not listing:
        return ""
    lines = [
        "| request | status | items | MiB | seconds | first byte s | streamed | slapd searches (pages expected) "
        "| worker RSS before MiB | worker peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for row in listing:
        lines.append(
            f"| GET {row['path']} | {row['status']} | {row['items']:,} | {_f(row['bytes'] / 2**20)} "
            f"| {_f(row['seconds'], 2)} | {_f(row['ttfb_s'], 3)} | {'yes' if row['chunked'] else 'no'} "
            f"| {row['slapd_searches']} ({row['expected_pages']} + 1 domain read) "
            f"| {_f(row['worker_rss_before_mib'])} | {_f(row['worker_peak_rss_mib'])} |")
    return "\n".join(lines)


def targets(results):
    runs = results["runs"]
    out = []
    for row in runs:
        if row["concurrency"] != 16 or "ldap3" not in row["raw"]:
            continue
        ratio = _ratio(row["api"], row["raw"]["ldap3"])
        mark = "met" if ratio is not None and ratio >= TARGET_RATIO else "NOT met"
        out.append(f"- throughput {row['title']} c=16: API/ldap3 = {_x(ratio)} (target ≥ {TARGET_RATIO}) — {mark}")
    for row in runs:
        api = row["api"]
        seen = max(api["rt"].items(), key=lambda kv: kv[1])[0] if api["rt"] else "-"
        if seen != row["expected_rt"]:
            out.append(f"- round trips {row['title']} c={row['concurrency']}: most requests made {seen}, "
                       f"the work needs {row['expected_rt']} — NOT met")
    for operation, concurrency, small, big in scale_pairs(results["scale"]):
        ratio = big["api"]["p50_ms"] / small["api"]["p50_ms"] if small["api"]["p50_ms"] else None
        mark = "met" if ratio is not None and ratio <= TARGET_SCALE else "NOT met"
        out.append(f"- scale {operation} c={concurrency}: p50 at {big['domain_users']:,} / at 100 = {_x(ratio)} "
                   f"(target ≤ {TARGET_SCALE}) — {mark}")
    for row in results.get("endpoints", []):
        if row["expected"] not in ("-", row["seen"]):
            out.append(f"- round trips {row['method']} {row['path']}: {row['seen']}, the work needs {row['expected']} "
                       "— NOT met")
    peak = max([r["api"]["worker_peak_rss_mib"] for r in runs + results["scale"]]
               + [r["worker_peak_rss_mib"] for r in results["listing"]], default=0)
    out.append(f"- worker RSS: peak {peak:.1f} MiB under load and listing (target ≤ {TARGET_RSS_MIB}) — "
               + ("met" if peak <= TARGET_RSS_MIB else "NOT met"))
    return "\n".join(out)


def markdown(results):
    config = results["config"]
    parts = [
        f"## iredapi-ldap bench — {results['started']}",
        f"{results['machine']['cores']} cores, {results['machine']['mem_gib']} GiB, Python "
        f"{results['machine']['python']}; gunicorn gthread {config['workers']} workers × {config['threads']} threads"
        + (f" (+ {' '.join(config['gunicorn_args'])})" if config.get("gunicorn_args") else "") + "; "
        f"{config['duration_s']} s per run; big domain {config['users']:,} users"
        + (" (quick)" if config["quick"] else ""),
        "", "### Endpoints against the raw directory work", "", main_table(results["runs"]),
        "", "### Where the CPU went (% of one core)", "", cpu_table(results["runs"], results["machine"]["cores"]),
    ]
    if results["scale"]:
        parts += ["", "### Scale: 100 users against the big domain", "", scale_table(results["scale"])]
    if results["bulk"]:
        parts += ["", "### Bulk load", "", bulk_table(results["bulk"], results["runs"])]
    if results["listing"]:
        parts += ["", "### Listing the big domain", "", listing_table(results["listing"])]
    if results.get("endpoints"):
        from .endpoints import table

        parts += ["", "### Round trips per endpoint (one request each)", "", table(results["endpoints"])]
    parts += ["", "### Targets", "", targets(results)]
    if results["notes"]:
        parts += ["", "### Notes", ""] + [f"- {note}" for note in results["notes"]]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":  # python -m bench.report results.json
    with open(sys.argv[1]) as handle:
        print(markdown(json.load(handle)))

"""Two sets of API runs side by side, before → after:

* ``python -m bench.compare RUN.json``: a run made with ``--compare-with``: the other checkout's
  runs (interleaved with this one's, so the machine's drift hits both) against this one's;
* ``python -m bench.compare BEFORE.json AFTER.json``: two separate runs (the machine's speed may
  have drifted between them: compare the raw baselines of both too).

For each scenario and concurrency: the API's rate, latencies, errors, workers' CPU per request and
the round trips seen.
"""

import json
import sys

from .report import _f, _per_request, _rt, _split


def _key(row):
    return row["scenario"], row["concurrency"]


def table(before, after, before_side="api"):
    old = {_key(r): r for r in before["runs"]}
    lines = [
        "| scenario | c | conns per worker | req/s | p50 ms | p95 ms | p99 ms | errors | workers CPU ms/req "
        "| round trips |",
        "|---|---:|---|---|---|---|---|---|---|---|",
    ]
    for row in after["runs"]:
        prev = old.get(_key(row))
        if prev is None:
            continue
        a, b = prev[before_side], row["api"]

        def pair(key, digits=1, a=a, b=b):
            return f"{_f(a[key], digits)} → {_f(b[key], digits)}"

        cpu = (f"{_f(_per_request(a['cpu_core_pct']['workers'], a['rps']), 2)} → "
               f"{_f(_per_request(b['cpu_core_pct']['workers'], b['rps']), 2)}")
        lines.append(
            f"| {row['title']} | {row['concurrency']} | {_split(a)} → {_split(b)} | {pair('rps')} "
            f"| {pair('p50_ms', 2)} | {pair('p95_ms', 2)} | {pair('p99_ms', 2)} | {a['errors']} → {b['errors']} "
            f"| {cpu} | {_rt(a['rt'])} → {_rt(b['rt'])} |")
    return "\n".join(lines)


def endpoint_table(results):
    after = results.get("endpoints", [])
    before = results.get("endpoints_other", [])
    lines = ["| request | round trips before → after | the work needs |", "|---|---|---:|"]
    for old, new in zip(before, after, strict=False):
        lines.append(f"| {new['method']} {new['path']} | {old['seen']} → {new['seen']} | {new['expected']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    with open(sys.argv[1]) as first:
        results = json.load(first)
    if len(sys.argv) > 2:
        with open(sys.argv[2]) as second:
            print(table(results, json.load(second)))
    else:
        print(table(results, results, before_side="api_other"))
        if results.get("endpoints_other"):
            print()
            print(endpoint_table(results))

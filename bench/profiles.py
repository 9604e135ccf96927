"""Summarise py-spy collapsed stacks (``python -m bench --profile``):
``python -m bench.profiles FILE... [--top N] [--match TEXT]``.

Prints the functions with the most samples on top of the stack (self) and anywhere in it
(inclusive), as a share of the samples of threads that were serving a request (threads
waiting for work are left out).
"""

import argparse
import collections
import re

# Leaves where a thread waits for work, not for a request's answer: not counted.
IDLE_LEAVES = ("_worker (concurrent/futures/thread.py)", "EpollSelector.select (selectors.py)",
               "PollSelector.select (selectors.py)", "WorkerTmp.notify (gunicorn/workers/workertmp.py)")

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _frame_name(frame):
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match.group("file")
    for marker in ("site-packages/", "iredapi_ldap/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1] if marker != "iredapi_ldap/" else "iredapi_ldap/" + path.split(marker, 1)[1]
            break
    return f"{match.group('func')} ({path})"


def summarise(paths, top=25, match=None):
    own = collections.Counter()
    inclusive = collections.Counter()
    total = 0
    for path in paths:
        with open(path) as handle:
            for line in handle:
                stack, _, count = line.rstrip("\n").rpartition(" ")
                if not stack or not count.isdigit():
                    continue
                count = int(count)
                frames = [_frame_name(f) for f in stack.split(";")]
                if frames[-1] in IDLE_LEAVES or (match and not any(match in f for f in frames)):
                    continue
                total += count
                own[frames[-1]] += count
                for name in set(frames):
                    inclusive[name] += count
    lines = [f"{total} samples"]
    for title, counter in (("self", own), ("inclusive", inclusive)):
        lines.append(f"-- {title}")
        for name, count in counter.most_common(top):
            lines.append(f"{100 * count / max(total, 1):5.1f}%  {name}")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match", default=None, help="only stacks with a frame containing this text")
    args = parser.parse_args()
    print(summarise(args.paths, args.top, args.match))


if __name__ == "__main__":
    main()

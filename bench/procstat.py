"""Reading /proc: CPU time and memory of processes, machine CPU, gunicorn's workers."""

import os
import threading
import time
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def cpu_seconds(pid):
    """User + system CPU seconds of ``pid`` (all its threads), or None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def memory_kib(pid):
    """{"VmRSS": KiB, "VmHWM": KiB} of ``pid``, or {} if it is gone."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                out[name] = int(value.split()[0])
    except OSError:
        return {}
    return out


def machine_jiffies():
    """(busy, total) jiffies of all CPUs since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])
    return total - idle, total


def children(pid):
    """Direct children of ``pid``."""
    found = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            found += [int(p) for p in text]
    except OSError:
        pass
    return sorted(set(found))


class CpuWindow:
    """CPU seconds used by named processes between ``start()`` and ``stop()``."""

    def __init__(self, pids):
        self.pids = dict(pids)  # name -> pid or [pids]
        self._before = {}
        self._machine = None
        self._t0 = None
        self.result = {}

    def _read(self):
        out = {}
        for name, pids in self.pids.items():
            many = isinstance(pids, (list, tuple))
            values = [cpu_seconds(p) or 0.0 for p in (pids if many else [pids])]
            out[name] = sum(values)
            if many:
                for index, value in enumerate(values):
                    out[f"{name}[{index}]"] = value
        return out

    def start(self):
        self._before = self._read()
        self._machine = machine_jiffies()
        self._t0 = time.monotonic()
        return self

    def stop(self):
        elapsed = time.monotonic() - self._t0
        after = self._read()
        busy0, total0 = self._machine
        busy1, total1 = machine_jiffies()
        self.result = {
            "elapsed_s": elapsed,
            # share of one core, per process group
            "cpu_core_pct": {name: 100.0 * (after[name] - self._before[name]) / elapsed for name in after},
            "machine_busy_pct": 100.0 * (busy1 - busy0) / max(total1 - total0, 1),
        }
        return self.result


class RssSampler(threading.Thread):
    """Samples VmRSS of the given pids every ``interval`` seconds until stopped."""

    def __init__(self, pids_fn, interval=0.1):
        super().__init__(daemon=True)
        self._pids_fn = pids_fn
        self._interval = interval
        self._stop_event = threading.Event()
        self.peak_kib = {}
        self.samples = 0

    def run(self):
        while not self._stop_event.is_set():
            for pid in self._pids_fn():
                rss = memory_kib(pid).get("VmRSS")
                if rss is not None and rss > self.peak_kib.get(pid, 0):
                    self.peak_kib[pid] = rss
            self.samples += 1
            self._stop_event.wait(self._interval)

    def stop(self):
        self._stop_event.set()
        self.join(5)
        return self

    @property
    def peak_mib(self):
        return max(self.peak_kib.values(), default=0) / 1024


def _socket_inodes(pid):
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass
    return inodes


def connections_per_process(pids, port):
    """{pid: established TCP connections whose local port is ``port``} (the HTTP clients
    each process holds)."""
    established = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                established.add(fields[9])
    return {pid: len(_socket_inodes(pid) & established) for pid in pids}

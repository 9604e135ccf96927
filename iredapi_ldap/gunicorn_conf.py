"""gunicorn settings for iredapi-ldap.

In the package, so that an installed copy has them too; ``iredapi-ldap serve`` and ``dev``
use them, and so do ``gunicorn -c python:iredapi_ldap.gunicorn_conf`` and a checkout's
``gunicorn -c gunicorn.conf.py`` (which imports this module).
Override the bind the usual ways (--bind, GUNICORN_CMD_ARGS, env below).
"""

import logging
import os

wsgi_app = "iredapi_ldap.app:get_app()"
bind = os.environ.get("IREDAPI_BIND", "127.0.0.1:7791")
# gthread: the LDAP and SQL drivers block on sockets; threads overlap those
# waits, processes use both cores. Our subclass of it: see the block below.
worker_class = "iredapi_ldap.server.ApiWorker"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("IREDAPI_THREADS", "8"))
# Each worker listens on a socket of its own (SO_REUSEPORT) and the kernel spreads new
# connections over them.  On one shared socket the worker that wakes first takes most of the
# connections a client opens at once and keeps them (keep-alive): the bench saw splits of 16/0
# and 15/1 that left a core idle.  TCP only: see on_starting.
reuse_port = True
timeout = 60
graceful_timeout = 30
keepalive = 5
# The app is loaded in each worker after the fork: LDAP and SQL connections are
# opened lazily by each worker's threads, never in the master.
preload_app = False
accesslog = os.environ.get("IREDAPI_ACCESS_LOG", "-")
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
proc_name = "iredapi-ldap"

# -- requests as they arrive (iredapi_ldap/server.py) ---------------------------------------
# ApiWorker reads each request in the worker's main loop and hands only complete ones to the
# threads; a request not in within IREDAPI_REQUEST_TIMEOUT seconds (default 10) gets 408.
# gunicorn's own error answers (414, 431, ...) carry our JSON envelope.
# gunicorn would take X-Forwarded-Proto (and -Ssl, -Protocol) from 127.0.0.1 by default and
# mark the request as TLS; the API believes them from TRUSTED_PROXIES only (access.py), so
# gunicorn believes no TCP peer.  (gunicorn trusts Unix-socket peers whatever this says.)
forwarded_allow_ips = ""


def on_starting(server):
    """Share the master's socket after all where a socket per worker cannot work: Unix
    sockets (each worker would bind the path anew, taking it from the others) and sockets
    handed over by systemd (which the workers would not use).  With sockets of our own,
    refuse a port that is taken: SO_REUSEPORT would let a second server share it silently
    with the first (same user), each answering half of the requests."""
    binds = server.cfg.bind or []
    if os.environ.get("LISTEN_FDS") or any(b.startswith(("unix:", "fd://")) for b in binds):
        server.cfg.set("reuse_port", False)
        return
    if not server.cfg.reuse_port:
        return
    _name_the_addresses(server)
    if not server.master_pid:  # master_pid: a USR2 upgrade takes over the port
        for bind in binds:
            _refuse_if_taken(server, bind)


class _ListeningAt(logging.Filter):
    """gunicorn's master logs "Listening at: <its sockets> (<pid>)".  With a socket per worker
    the master has none, and the line said "Listening at:  (1234)"; fill in the addresses."""

    def __init__(self, addresses):
        super().__init__()
        self.addresses = addresses

    def filter(self, record):
        if record.msg == "Listening at: %s (%s)" and record.args and not record.args[0]:
            record.msg = "Listening at: %s (%s), a socket in each worker (reuse_port)"
            record.args = (self.addresses, *record.args[1:])
        return True


def _name_the_addresses(server):
    scheme = "https" if server.cfg.is_ssl else "http"
    tcp = [address for address in server.cfg.address if isinstance(address, tuple)]  # (host, port)
    addresses = ",".join(f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"
                         for host, port in tcp)
    error_log = getattr(server.log, "error_log", None) or logging.getLogger("gunicorn.error")
    error_log.addFilter(_ListeningAt(addresses))


def _refuse_if_taken(server, bind):
    import socket
    import sys

    from gunicorn.util import parse_address

    host, port = parse_address(bind)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT leftovers are fine
        probe.bind((host, port))
    except OSError as exc:
        server.log.error("cannot listen on %s: %s", bind, exc.strerror)
        sys.exit(1)
    finally:
        probe.close()

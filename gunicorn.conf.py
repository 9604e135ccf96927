# gunicorn settings for iredapi-ldap:
#   IREDAPI_SETTINGS=/etc/iredapi-ldap/settings.py gunicorn -c gunicorn.conf.py
# Override the bind the usual ways (--bind, GUNICORN_CMD_ARGS, env below).
import os

wsgi_app = "iredapi_ldap.app:get_app()"
bind = os.environ.get("IREDAPI_BIND", "127.0.0.1:7791")
# gthread: ldap3 and the SQL drivers block on sockets; threads overlap those
# waits, processes use both cores (stack.md §4).
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("IREDAPI_THREADS", "8"))
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

# gunicorn settings for iredapi-ldap, for running from a checkout:
#   IREDAPI_SETTINGS=/etc/iredapi-ldap/settings.py gunicorn -c gunicorn.conf.py
# They live in the package (iredapi_ldap/gunicorn_conf.py), so that an installed copy
# has them too: `iredapi-ldap serve`, or gunicorn -c python:iredapi_ldap.gunicorn_conf
from iredapi_ldap.gunicorn_conf import *  # noqa: F403

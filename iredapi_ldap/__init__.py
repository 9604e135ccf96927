"""iredapi-ldap: the iRedAdmin-Pro RESTful API for iRedMail servers on OpenLDAP."""

__version__ = "0.1.0"

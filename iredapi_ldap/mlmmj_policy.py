"""``accountStatus`` and ``accessPolicy`` of subscribable (mlmmj) lists.  Nothing here knows HTTP.

Who reads what on a real server:

- ``accountStatus``: Postfix's transport_maps_user routes an mlmmj list to mlmmj only with
  ``accountStatus=active``, and iRedAPD's ldap_maillist_access_policy plugin rejects mail to a
  list whose accountStatus is not ``active``.  mlmmjadmin writes ``active`` at create and has no
  API to change it, so we write it on the list's entry (directory.mlmmj_lists.set_status_and_policy).
- ``accessPolicy``: the plugin reads the entry's ``accessPolicy`` (absent means public).  For an
  mlmmj list it enforces ``domain`` and ``subdomain`` itself and leaves ``membersonly`` and
  ``moderatorsonly`` to mlmmj, whose ``subonlypost`` and ``modonlypost`` control files
  (mlmmjadmin's ``only_subscriber_can_post`` / ``only_moderator_can_post``) do it.  So a policy
  is two things, set together: mlmmj's two flags, through mlmmjadmin, and the LDAP value, by us
  afterwards, because mlmmjadmin 3.6.3 writes ``moderatorsonly``/``membersonly`` whenever a flag's
  key is in its form, whatever its value (bk_iredmail_ldap.add_maillist/update_maillist).

    policy           only_moderator_can_post  only_subscriber_can_post  who enforces
    public           no                       no                        nobody
    domain           no                       no                        iRedAPD
    subdomain        no                       no                        iRedAPD
    membersonly      no                       yes                       mlmmj
    moderatorsonly   yes                      no                        mlmmj

``membersandmoderatorsonly`` (old-style lists) is refused: for an mlmmj list iRedAPD would look
for members in LDAP (``memberOfGroup``), where mlmmj's subscribers are not, and reject them.
"""

from . import errors
from .directory import mlmmj_lists as directory_lists

ACCESS_POLICIES = ("public", "domain", "subdomain", "membersonly", "moderatorsonly")
MODERATORS_FLAG = "only_moderator_can_post"
SUBSCRIBERS_FLAG = "only_subscriber_can_post"
_FLAGS = {  # policy -> (only_moderator_can_post, only_subscriber_can_post)
    "public": (False, False), "domain": (False, False), "subdomain": (False, False),
    "membersonly": (False, True), "moderatorsonly": (True, False),
}
_SENDER_POLICIES = ("public", "domain", "subdomain")  # iRedAPD's own, no mlmmj flag


def with_posting_flags(values):
    """``values`` with the two posting flags an ``accessPolicy`` means.  A flag given as well
    that says otherwise is CONFLICTING_PARAMETERS (before anything changed)."""
    policy = values.get("accessPolicy")
    if policy is None:
        return values
    wanted = dict(zip((MODERATORS_FLAG, SUBSCRIBERS_FLAG), _FLAGS[policy], strict=True))
    for name, value in wanted.items():
        if name in values and values[name] != value:
            raise errors.InvalidInput(errors.CONFLICTING_PARAMETERS, param=name,
                                      detail=f"accessPolicy={policy} means {name}={'yes' if value else 'no'}")
    return {**values, **wanted}


def policy_of_flags(profile, current=None):
    """The policy mlmmj's flags (mlmmjadmin's profile, "yes"/"no") express: modonlypost wins
    over subonlypost in mlmmj; with neither, the sender policy iRedAPD had (``current``) stays."""
    if profile.get(MODERATORS_FLAG) == "yes":
        return "moderatorsonly"
    if profile.get(SUBSCRIBERS_FLAG) == "yes":
        return "membersonly"
    current = (current or "").lower()
    return current if current in _SENDER_POLICIES else "public"


def settle(directory, client, mail, values, current_policy=None):
    """After mlmmjadmin carried out the request: write the entry's ``accountStatus`` and
    ``accessPolicy`` as the request asks.  A posting flag given without ``accessPolicy``: the
    policy follows what mlmmj now has (one profile read), correcting what mlmmjadmin wrote.  An
    ``accessPolicy`` is written only if mlmmj's flags (read once more) are still the ones it
    means: else 409 CONCURRENT_UPDATE, the later request's policy left in force."""
    status = values.get("accountStatus")
    policy = values.get("accessPolicy")
    if policy is None and (MODERATORS_FLAG in values or SUBSCRIBERS_FLAG in values):
        policy = policy_of_flags(client.profile(mail) or {}, current_policy)
    elif policy is not None and policy_of_flags(client.profile(mail) or {}, policy) != policy:
        # Another request's mlmmjadmin write came after ours (its flags are in force, and its entry
        # write may be done already): ours would pair its policy with the other's flags, e.g. an
        # entry "membersonly" (left to mlmmj by iRedAPD) with no subonlypost: a list open to all.
        directory_lists.set_status_and_policy(directory, mail, status, None)
        raise errors.Conflict(errors.CONCURRENT_UPDATE, param="accessPolicy",
                              detail=f"another request changed {mail}'s posting flags meanwhile; try again")
    directory_lists.set_status_and_policy(directory, mail, status, policy)


def shown_policy(entry, profile):
    """GET's ``accessPolicy``: the policy in force, from both places.  mlmmj's flags decide
    ``membersonly``/``moderatorsonly`` (iRedAPD leaves those to mlmmj); without a flag, the entry's
    sender policy (what iRedAPD enforces) or ``public``.  An entry saying a member policy that no
    flag backs (mlmmjadmin wrote it for a flag's key, and the request died before ours, or two
    PUTs interleaved) is an open list: shown as ``public``, not as the entry's word."""
    return policy_of_flags(profile, entry.first("accessPolicy"))

"""Password hashing, verification, ready-made hashes and the password policy.

Our hashes are checked by the two programs that verify them on an iRedMail server:
Dovecot (``doveadm pw -t``) and slapd (a simple bind, as Dovecot 2.3's auth_bind does).
"""

import re
import shutil
import subprocess
import tempfile

import pytest

from iredapi_ldap.directory.passwords import (
    PASSWORD_HASH_MAX_LENGTH,
    PASSWORD_SCHEMES,
    PasswordPolicy,
    check_password_hash,
    hash_password,
)
from iredapi_ldap.errors import InvalidInput
from iredapi_ldap.settings import build_settings
from tests.password_verifier import verify_password

PLAIN = "Secret#2026"
WRONG = "Secret#2027"

B64 = "[A-Za-z0-9+/]"
CRYPT64 = "[./A-Za-z0-9]"
STORED_FORMS = {
    "SSHA512": rf"\{{SSHA512\}}{B64}{{96}}",  # 64-byte digest + 8-byte salt
    "SSHA": rf"\{{SSHA\}}{B64}{{38}}==",  # 20 + 8 bytes
    "SHA512": rf"\{{SHA512\}}{B64}{{86}}==",
    "BCRYPT": rf"\{{CRYPT\}}\$2y\$12\${CRYPT64}{{53}}",
    "SHA512-CRYPT": rf"\{{CRYPT\}}\$6\${CRYPT64}{{16}}\${CRYPT64}{{86}}",  # no rounds= : 5000
    "MD5": rf"\{{CRYPT\}}\$1\${CRYPT64}{{8}}\${CRYPT64}{{22}}",
    "PLAIN-MD5": r"\{PLAIN-MD5\}[0-9a-f]{32}",
    "PLAIN": re.escape("{PLAIN}" + PLAIN),
}
SALTED = ("SSHA512", "SSHA", "BCRYPT", "SHA512-CRYPT", "MD5")
SLAPD_VERIFIES = ("SSHA512", "SSHA", "SHA512", "BCRYPT", "SHA512-CRYPT", "MD5")

# Made by `doveadm pw -s <scheme> -p 'Vector#1'` (Dovecot 2.3.19, Debian 12).
VECTOR_PLAIN = "Vector#1"
DOVEADM_VECTORS = (
    "{SSHA512}mxu8xbEPyWX3jmg/voDflmKjhEW6bJsK3wmLxwxDbwObI/1BHem3BZiCFEMthQNZ5cyAkchewS7K9SviPdEYpe2Cob8=",
    "{SSHA}MTf7n903nvDCqDUIUnFwE0LhqU1Mz943",  # a 4-byte salt
    "{SHA}M2gnfnE3X+Cr9l+xkfB4j4/E1aE=",
    "{SHA512}aRoy1vM+tw32epE8KWy308CeVfO+cAyCAufmKiev3vB4qEyw8iNeLlFk/QK++xICUB7iDj/hTOfLpO3aC1MxNw==",
    "{PLAIN-MD5}a7371f5e9670cb13ebbe521dd0432297",
    "{BLF-CRYPT}$2y$05$bxarGFGB8Dw2kEYuFHWfPehy9WXxxXE441I/JxK0vljFleQ5bir1C",
    "{SHA512-CRYPT}$6$JSAdEgTnaNNiGpB6$w4G8WLVGNi7aruDawN2vcwZ7aHRN.VPycSgBzYbjv/GRgkYzXEXVZNkbQY437EQvF2Sy/dMpByyXwo3AkzPYM/",
)
BLF_BODY = DOVEADM_VECTORS[5].split("}", 1)[1]
SHA512_CRYPT_BODY = DOVEADM_VECTORS[6].split("}", 1)[1]
MD5_CRYPT_BODY = "$1$GQhf8EHf$g1FdlZlZF62uPoyWqblQn0"
SSHA_BODY = DOVEADM_VECTORS[1].split("}", 1)[1]
# Also of VECTOR_PLAIN: doveadm pw -s SHA256-CRYPT / ARGON2I / ARGON2ID / DES-CRYPT, and libxcrypt's
# crypt(3) for yescrypt (Debian 12; python3 -c 'import crypt; crypt.crypt(p, "$y$j9T$abcdefghijklmnop")').
SHA256_CRYPT_BODY = "$5$goQpwmJrsA.r4.pH$QVw6i3YuByEPhQlti41rXnJW3GBJBYRRhCfkI/O.1G6"
ARGON2I_VECTOR = ("{ARGON2I}$argon2i$v=19$m=32768,t=4,p=1$KjwPYnFFMVqanHTkUbKwIQ$"
                  "vWNhQIPxuY1UfEOjk/3tBPGldlW4vvt8mTd4HlVGCT8")
ARGON2ID_VECTOR = ("{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$vGVCzFRZNqaTt9hPScXcgQ$"
                   "jLWKFz0Ms76yHDy9ttVUO1geQU5jR39RCIOKf9QHTLQ")
YESCRYPT_BODY = "$y$j9T$abcdefghijklmnop$h9Pt1AGPC4VMyDBVzNj69sPkevi7XwpWC62JF3yW11C"
DES_CRYPT_BODY = "JN/Giyri0i6/U"


@pytest.fixture(scope="module")
def stored():
    """One hash of PLAIN per scheme (bcrypt is slow; hash once)."""
    return {scheme: hash_password(PLAIN, scheme) for scheme in PASSWORD_SCHEMES}


# -- hash_password / verify_password -----------------------------------------------------

def test_every_scheme_has_a_stored_form():
    assert set(STORED_FORMS) == set(PASSWORD_SCHEMES)


@pytest.mark.parametrize("scheme", PASSWORD_SCHEMES)
def test_stored_form_and_round_trip(stored, scheme):
    assert re.fullmatch(STORED_FORMS[scheme], stored[scheme])
    assert verify_password(PLAIN, stored[scheme])
    assert not verify_password(WRONG, stored[scheme])


@pytest.mark.parametrize("scheme", SALTED)
def test_salted_hashes_differ(stored, scheme):
    assert hash_password(PLAIN, scheme) != stored[scheme]


@pytest.mark.parametrize("scheme", ("SHA512", "PLAIN-MD5", "PLAIN"))
def test_unsalted_hashes_repeat(stored, scheme):
    assert hash_password(PLAIN, scheme) == stored[scheme]


def test_default_scheme_is_ssha512():
    assert hash_password(PLAIN).startswith("{SSHA512}")


@pytest.mark.parametrize("name", ("ssha512", "Sha512-Crypt", "bcrypt", "plain-md5"))
def test_scheme_names_are_case_insensitive(name):
    assert verify_password(PLAIN, hash_password(PLAIN, name))


@pytest.mark.parametrize("name", ("SHA256", "BLF-CRYPT", "", None))
def test_unknown_scheme(name):
    with pytest.raises(InvalidInput) as caught:
        hash_password(PLAIN, name)
    assert caught.value.code == "INVALID_PASSWORD_SCHEME"


def test_bcrypt_takes_72_bytes():
    assert verify_password("a" * 72, hash_password("a" * 72, "BCRYPT"))


@pytest.mark.parametrize("plain", ("a" * 73, "é" * 37))  # 73 and 74 bytes of UTF-8
def test_bcrypt_refuses_longer_passwords(plain):
    with pytest.raises(InvalidInput) as caught:
        hash_password(plain, "BCRYPT")
    assert caught.value.code == "PW_GREATER_THAN_MAX_LENGTH"
    assert caught.value.param == "password"
    assert plain not in str(caught.value)


def test_multibyte_passwords_hash_as_utf8():
    for scheme in ("SSHA512", "SHA512-CRYPT", "BCRYPT"):
        stored_value = hash_password("pässwörd", scheme)
        assert verify_password("pässwörd", stored_value)
        assert not verify_password("passwort", stored_value)


@pytest.mark.parametrize("stored_value", DOVEADM_VECTORS)
def test_verifies_doveadm_hashes(stored_value):
    assert verify_password(VECTOR_PLAIN, stored_value)
    assert not verify_password("Vector#2", stored_value)


@pytest.mark.parametrize("stored_value", (
    "{CRYPT}" + BLF_BODY,
    "{CRYPT}" + BLF_BODY.replace("$2y$", "$2a$"),
    "{CRYPT}" + BLF_BODY.replace("$2y$", "$2b$"),
    "{CRYPT}" + SHA512_CRYPT_BODY,
    "{CRYPT}" + MD5_CRYPT_BODY,
    "{crypt}" + SHA512_CRYPT_BODY,
    "{PLAIN-MD5}A7371F5E9670CB13EBBE521DD0432297",
    "{PLAIN}" + VECTOR_PLAIN,
    b"{SHA}M2gnfnE3X+Cr9l+xkfB4j4/E1aE=",  # bytes, as ldap3 returns it
))
def test_verifies_other_spellings(stored_value):
    assert verify_password(VECTOR_PLAIN, stored_value)


@pytest.mark.parametrize("stored_value", (
    "",
    VECTOR_PLAIN,  # no prefix
    "{SHA256}" + VECTOR_PLAIN,
    "{SSHA512}not base64!",
    "{SSHA512}",
    "{SHA}M2gnfnE3X+Cr9l+xkfB4j4/E1aE=AAAA",  # unsalted with trailing bytes
    "{PLAIN-MD5}ä",
    "{CRYPT}$6$garbage",
    "{CRYPT}$2y$garbage",
    "{CRYPT}$5$rounds=5000$abc$def",
    "{CRYPT}" + VECTOR_PLAIN,
))
def test_unknown_or_malformed_never_match(stored_value):
    assert not verify_password(VECTOR_PLAIN, stored_value)


def test_long_password_against_bcrypt_is_no_match(stored):
    assert not verify_password(PLAIN + "x" * 80, stored["BCRYPT"])


# -- check_password_hash -----------------------------------------------------------------

@pytest.mark.parametrize(("given", "expected"), (
    (DOVEADM_VECTORS[0], DOVEADM_VECTORS[0]),
    ("{ssha}" + SSHA_BODY, "{SSHA}" + SSHA_BODY),
    (DOVEADM_VECTORS[2], DOVEADM_VECTORS[2]),
    (DOVEADM_VECTORS[3], DOVEADM_VECTORS[3]),
    ("{PLAIN}my secret", "{PLAIN}my secret"),
    ("{PLAIN-MD5}a7371f5e9670cb13ebbe521dd0432297", "{PLAIN-MD5}a7371f5e9670cb13ebbe521dd0432297"),
    ("{CRYPT}" + SHA512_CRYPT_BODY, "{CRYPT}" + SHA512_CRYPT_BODY),
    ("{CRAM-MD5}e02d374fde0dc75a17a557039a3a5338c7743304777dccd376f332bee68d2cf6",
     "{CRAM-MD5}e02d374fde0dc75a17a557039a3a5338c7743304777dccd376f332bee68d2cf6"),
    ("{NTLM}8846f7eaee8fb117ad06bdd830b7586c", "{NTLM}8846f7eaee8fb117ad06bdd830b7586c"),
    (ARGON2ID_VECTOR, ARGON2ID_VECTOR),
    (ARGON2I_VECTOR, ARGON2I_VECTOR),
    ("{ARGON2ID}$argon2id$m=65536,t=3,p=1$c2FsdHNhbHQ$aGFzaA",  # libargon2 1.0: no v=
     "{ARGON2ID}$argon2id$m=65536,t=3,p=1$c2FsdHNhbHQ$aGFzaA"),
    ("{CRYPT}" + SHA256_CRYPT_BODY, "{CRYPT}" + SHA256_CRYPT_BODY),
    ("{CRYPT}$5$rounds=10000$saltsalt$/AERU1xqnHgyDxQl8JTzyRKHixVaGsUgvozh.yxy0W.",
     "{CRYPT}$5$rounds=10000$saltsalt$/AERU1xqnHgyDxQl8JTzyRKHixVaGsUgvozh.yxy0W."),
    ("{CRYPT}" + YESCRYPT_BODY, "{CRYPT}" + YESCRYPT_BODY),
    ("{CRYPT}" + DES_CRYPT_BODY, "{CRYPT}" + DES_CRYPT_BODY),
    ("{CRYPT}" + BLF_BODY.replace("$2y$", "$2a$"), "{CRYPT}" + BLF_BODY.replace("$2y$", "$2a$")),
    ("{CRYPT}$1$$i4kuwDYyeket.SMEumlEm.", "{CRYPT}$1$$i4kuwDYyeket.SMEumlEm."),  # md5-crypt, empty salt
    # crypt(3) hashes under Dovecot-only names are stored as {CRYPT}, which slapd verifies too
    ("{BLF-CRYPT}" + BLF_BODY, "{CRYPT}" + BLF_BODY),
    ("{BCRYPT}" + BLF_BODY.replace("$2y$", "$2b$"), "{CRYPT}" + BLF_BODY.replace("$2y$", "$2b$")),
    ("{SHA512-CRYPT}" + SHA512_CRYPT_BODY, "{CRYPT}" + SHA512_CRYPT_BODY),
    ("{MD5}" + MD5_CRYPT_BODY, "{CRYPT}" + MD5_CRYPT_BODY),
    ("{md5-crypt}" + MD5_CRYPT_BODY, "{CRYPT}" + MD5_CRYPT_BODY),
))
def test_password_hash_accepted(given, expected):
    assert check_password_hash(given) == expected


def test_password_hash_normalised_still_verifies():
    for vector in DOVEADM_VECTORS:
        assert verify_password(VECTOR_PLAIN, check_password_hash(vector))


def test_password_hash_length_limit():
    longest = "{PLAIN}" + "a" * (PASSWORD_HASH_MAX_LENGTH - len("{PLAIN}"))
    assert check_password_hash(longest) == longest
    with pytest.raises(InvalidInput):
        check_password_hash(longest + "a")


@pytest.mark.parametrize("given", (
    "",
    "abc",  # no prefix
    "$6$abc$def",
    "{SHA256}abc",
    "{ARGON2}$argon2id$v=19$abc",
    "{SSHA512}",  # nothing after the prefix
    "{SSHA512}abc\n",
    "{SSHA512}abc\r\ndef",
    "{SSHA512}ab\tc",
    "{PLAIN}pässword",
    "{BLF-CRYPT}" + SHA512_CRYPT_BODY,  # the body is not what the prefix says
    "{SHA512-CRYPT}" + BLF_BODY,
    "{MD5}CY9rzUYh03PK3k6DJie09g==",  # slapd's {MD5} digest, not iRedAdmin's md5-crypt
    None,
    b"{SSHA}abc",
    # well-prefixed but malformed bodies: no password could ever match them
    "{SSHA}abc",
    "{SSHA}abcdefgh",  # base64 of 6 bytes
    "{SSHA}" + DOVEADM_VECTORS[2].split("}", 1)[1],  # a bare 20-byte digest: no salt
    "{SHA}" + SSHA_BODY,  # a salt where none belongs
    "{SHA}M2gnfnE3X+Cr9l+xkfB4j4/E1aE",  # missing padding
    "{SHA512}" + DOVEADM_VECTORS[0].split("}", 1)[1],
    "{SSHA512}" + DOVEADM_VECTORS[3].split("}", 1)[1],
    "{SSHA512}abc=",
    "{SSHA512}not base64!",
    "{CRYPT}abc",
    "{CRYPT}$6$salt$short",
    "{CRYPT}" + SHA512_CRYPT_BODY[:-1],
    "{CRYPT}" + SHA512_CRYPT_BODY + "x",
    "{CRYPT}" + SHA256_CRYPT_BODY.replace("$5$", "$6$"),  # a SHA-256 digest under the SHA-512 id
    "{CRYPT}" + BLF_BODY.replace("$05$", "$03$"),  # bcrypt's cost is 4 to 31
    "{CRYPT}" + BLF_BODY.replace("$2y$", "$2x$"),
    "{CRYPT}" + BLF_BODY[:-1],
    "{BLF-CRYPT}" + BLF_BODY[:-2],
    "{MD5}$1$GQhf8EHf$g1FdlZlZF62uPoyWqblQn",
    "{SHA512-CRYPT}$6$",
    "{CRYPT}$argon2id$v=19$m=65536,t=3,p=1$vGVCzFRZNqaTt9hPScXcgQ$jLWKFz0Ms76yHDy9ttVUO1geQU5jR39RCIOKf9QHTLQ",
    "{PLAIN-MD5}a7371f5e9670cb13ebbe521dd043229",  # 31 hex digits
    "{PLAIN-MD5}a7371f5e9670cb13ebbe521dd043229g",
    "{NTLM}8846f7eaee8fb117ad06bdd830b7586",
    "{NTLM}zz",
    "{CRAM-MD5}e02d374fde0dc75a17a557039a3a5338",
    "{ARGON2ID}" + ARGON2I_VECTOR.split("}", 1)[1],  # the variant must match the scheme
    "{ARGON2I}" + ARGON2ID_VECTOR.split("}", 1)[1],
    "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA",  # a 4-byte salt: libargon2 needs 8
    "{ARGON2ID}$argon2id$v=19$m=65536,t=3$vGVCzFRZNqaTt9hPScXcgQ$jLWKFz0Ms76yHDy9ttVUO1geQU5jR39RCIOKf9QHTLQ",
    "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$vGVCzFRZNqaTt9hPScXcgQ",
))
def test_password_hash_rejected(given):
    with pytest.raises(InvalidInput) as caught:
        check_password_hash(given)
    assert caught.value.code == "INVALID_PASSWORD_SCHEME"
    assert caught.value.param == "password_hash"
    if given:
        assert str(given) not in str(caught.value)


# -- PasswordPolicy ----------------------------------------------------------------------

def policy(domain_min=None, domain_max=None, **settings):
    return PasswordPolicy.from_settings(build_settings(settings), domain_min, domain_max)


def failure(plain, checked_by=None):
    with pytest.raises(InvalidInput) as caught:
        (checked_by or policy()).check(plain)
    error = caught.value
    assert error.param == "password"
    assert error.detail
    assert not plain or plain not in str(error) + repr(error.args) + error.detail
    return error.code


def test_default_policy_accepts_a_good_password():
    policy().check(PLAIN)


def test_policy_from_default_settings():
    assert policy() == PasswordPolicy(
        min_length=8, max_length=0, has_letter=True, has_uppercase=True, has_number=True,
        has_special_char=True, special_characters="#$%&*+-,.:;!=<>'\"?@[]/(){}_`~",
    )


@pytest.mark.parametrize(("plain", "code"), (
    ("", "PW_EMPTY"),
    ("Sécret#2026", "PW_NON_ASCII"),
    ("Secret#2026\n", "PW_NON_ASCII"),
    ("Secret#\t2026", "PW_NON_ASCII"),
    ("Se#1", "PW_SHORTER_THAN_MIN_LENGTH"),
    ("secret#2026", "PW_NO_UPPERCASE"),
    ("Secrets#abc", "PW_NO_DIGIT_NUMBER"),
    ("Secret2026", "PW_NO_SPECIAL_CHAR"),
    ("12345678#", "PW_NO_LETTER,PW_NO_UPPERCASE"),
    ("12345678", "PW_NO_LETTER,PW_NO_UPPERCASE,PW_NO_SPECIAL_CHAR"),
    ("secretpassword", "PW_NO_UPPERCASE,PW_NO_DIGIT_NUMBER,PW_NO_SPECIAL_CHAR"),
))
def test_policy_codes(plain, code):
    assert failure(plain) == code


def test_none_is_empty():
    with pytest.raises(InvalidInput) as caught:
        policy().check(None)
    assert caught.value.code == "PW_EMPTY"


def test_space_is_allowed():
    policy().check("Secret #2026")


def test_no_letter_alone():
    assert failure("12345678#", policy(PASSWORD_HAS_UPPERCASE=False)) == "PW_NO_LETTER"


def test_rules_can_be_switched_off():
    relaxed = policy(
        PASSWORD_HAS_LETTER=False, PASSWORD_HAS_UPPERCASE=False,
        PASSWORD_HAS_NUMBER=False, PASSWORD_HAS_SPECIAL_CHAR=False,
    )
    relaxed.check("12345678")
    relaxed.check("abcdefgh")


def test_global_max_zero_is_unlimited():
    policy().check(PLAIN + "x" * 500)


def test_global_max_length():
    assert failure(PLAIN + "x", policy(max_passwd_length=len(PLAIN))) == "PW_GREATER_THAN_MAX_LENGTH"
    policy(max_passwd_length=len(PLAIN)).check(PLAIN)


def test_domain_lengths_override_global():
    assert failure(PLAIN, policy(domain_min=len(PLAIN) + 1)) == "PW_SHORTER_THAN_MIN_LENGTH"
    assert failure(PLAIN, policy(domain_max=len(PLAIN) - 1)) == "PW_GREATER_THAN_MAX_LENGTH"
    policy(domain_min=4).check("Se#1")  # the domain may be laxer than the global 8
    policy(domain_max=20, max_passwd_length=10).check(PLAIN + "x")


@pytest.mark.parametrize("unset", (0, None))
def test_domain_zero_or_none_means_global(unset):
    assert policy(domain_min=unset, domain_max=unset, min_passwd_length=9, max_passwd_length=30) == policy(
        min_passwd_length=9, max_passwd_length=30,
    )
    assert policy(domain_min=unset).min_length == 8


def test_special_characters_setting():
    caret_only = policy(PASSWORD_SPECIAL_CHARACTERS="^")
    assert failure(PLAIN, caret_only) == "PW_NO_SPECIAL_CHAR"
    caret_only.check("Secret^2026")


def test_details_say_what_is_missing():
    with pytest.raises(InvalidInput) as caught:
        policy().check("12345678")
    assert "letter" in caught.value.detail
    assert "special" in caught.value.detail


# -- cross-check: Dovecot ----------------------------------------------------------------

DOVEADM = shutil.which("doveadm")


@pytest.fixture(scope="module")
def doveadm_config(tmp_path_factory):
    # `doveadm pw` needs no settings, but reads a config file; an empty one keeps the
    # host's dovecot.conf (or its absence) out of the test.
    if DOVEADM is None:
        pytest.skip("doveadm is not installed (Debian package dovecot-core)")
    config = tmp_path_factory.mktemp("dovecot") / "dovecot.conf"
    config.write_text("")
    return config


def doveadm_verifies(config, stored_value, plain):
    result = subprocess.run(
        [DOVEADM, "-c", str(config), "pw", "-t", stored_value, "-p", plain],
        capture_output=True, text=True, timeout=60, check=False,
    )
    return result.returncode == 0


@pytest.mark.parametrize("scheme", PASSWORD_SCHEMES)
def test_dovecot_verifies_our_hashes(doveadm_config, stored, scheme):
    assert doveadm_verifies(doveadm_config, stored[scheme], PLAIN)
    assert not doveadm_verifies(doveadm_config, stored[scheme], WRONG)


# Every scheme of check_password_hash that doveadm writes, under the prefix doveadm gives it.
DOVEADM_SCHEMES = ("SSHA512", "SSHA", "SHA", "SHA512", "PLAIN-MD5", "CRAM-MD5", "ARGON2I", "ARGON2ID",
                   "BLF-CRYPT", "SHA512-CRYPT", "MD5-CRYPT", "CRYPT")


@pytest.mark.parametrize("scheme", DOVEADM_SCHEMES)
def test_hashes_dovecot_writes_are_accepted_and_still_verify(doveadm_config, scheme):
    for _ in range(3):  # fresh salts each time: the checks must hold for any of them
        result = subprocess.run([DOVEADM, "-c", str(doveadm_config), "pw", "-s", scheme, "-p", PLAIN],
                                capture_output=True, text=True, timeout=60, check=True)
        written = result.stdout.strip()
        assert written.startswith("{" + scheme + "}")
        assert doveadm_verifies(doveadm_config, check_password_hash(written), PLAIN)


# -- cross-check: slapd (Dovecot 2.3's auth_bind) ------------------------------------------

SUFFIX = "dc=example,dc=com"


def user_dn(name):
    return f"cn={name},{SUFFIX}"


@pytest.fixture(scope="module")
def slapd(stored):
    """A throwaway slapd with pw-sha2 holding one user per hash; yields its URI."""
    slapdtest = pytest.importorskip("slapdtest", reason="python-ldap (slapdtest) is not installed")
    import ldap

    module_line = "olcModuleLoad: back_%(database)s\n"

    class PasswordSlapd(slapdtest.SlapdObject):
        suffix = SUFFIX
        slapd_loglevel = "none"
        openldap_schema_files = ("core.ldif", "cosine.ldif", "nis.ldif", "inetorgperson.ldif")
        # pw-sha2 gives slapd {SSHA512}/{SHA512}, as iRedMail's slapd.conf loads it.
        slapd_conf_template = slapdtest.SlapdObject.slapd_conf_template.replace(
            module_line, module_line + "olcModuleLoad: pw-sha2\n",
        )

        def __init__(self, run_parent):
            self.TMPDIR = run_parent  # short, for the 108-byte ldapi socket path
            super().__init__()

    assert "pw-sha2" in PasswordSlapd.slapd_conf_template
    run_parent = tempfile.mkdtemp(prefix="iredapi-pw-")
    try:
        server = PasswordSlapd(run_parent)
    except ValueError as exc:  # slapdtest cannot find slapd, slapadd or ldap-utils
        shutil.rmtree(run_parent)
        pytest.skip(f"slapd is not installed: {exc}")
    server.start()
    try:
        entries = {name: stored[name] for name in SLAPD_VERIFIES}
        blf_crypt = "{BLF-CRYPT}" + stored["BCRYPT"].removeprefix("{CRYPT}")  # as doveadm writes it
        entries["imported-blf-crypt"] = check_password_hash(blf_crypt)
        entries["raw-blf-crypt"] = blf_crypt
        # crypt(3) forms check_password_hash accepts beyond the ones we write (hashes of VECTOR_PLAIN)
        for name, body in CRYPT_VECTORS.items():
            entries[name] = check_password_hash("{CRYPT}" + body)
        conn = ldap.initialize(server.ldap_uri)
        conn.simple_bind_s(server.root_dn, server.root_pw)
        conn.add_s(SUFFIX, [
            ("objectClass", [b"dcObject", b"organization"]), ("dc", [b"example"]), ("o", [b"Example"]),
        ])
        for name, stored_value in entries.items():
            conn.add_s(user_dn(name), [
                ("objectClass", [b"inetOrgPerson"]), ("cn", [name.encode()]), ("sn", [name.encode()]),
                ("userPassword", [stored_value.encode()]),
            ])
        conn.unbind_s()
        yield server.ldap_uri
    finally:
        server.stop()
        shutil.rmtree(run_parent, ignore_errors=True)


def slapd_binds(uri, dn, password):
    import ldap

    conn = ldap.initialize(uri)
    try:
        conn.simple_bind_s(dn, password)
        return True
    except ldap.INVALID_CREDENTIALS:
        return False
    finally:
        conn.unbind_s()


@pytest.mark.parametrize("name", SLAPD_VERIFIES)
def test_slapd_verifies_our_hashes(slapd, name):
    assert slapd_binds(slapd, user_dn(name), PLAIN)
    assert not slapd_binds(slapd, user_dn(name), WRONG)


def test_slapd_verifies_an_imported_blf_crypt_hash(slapd):
    assert slapd_binds(slapd, user_dn("imported-blf-crypt"), PLAIN)


CRYPT_VECTORS = {"sha256-crypt": SHA256_CRYPT_BODY, "yescrypt": YESCRYPT_BODY, "des-crypt": DES_CRYPT_BODY}


@pytest.mark.parametrize("name", CRYPT_VECTORS)
def test_slapd_verifies_the_other_crypt_forms_we_accept(slapd, name):
    assert slapd_binds(slapd, user_dn(name), VECTOR_PLAIN)
    assert not slapd_binds(slapd, user_dn(name), WRONG)


def test_slapd_does_not_know_blf_crypt(slapd):
    # Why check_password_hash stores {BLF-CRYPT} hashes as {CRYPT}.
    assert not slapd_binds(slapd, user_dn("raw-blf-crypt"), PLAIN)

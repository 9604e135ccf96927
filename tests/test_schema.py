"""Our cn=config schema LDIFs: equivalence with iRedMail's upstream .schema files, and slapd accepts them.

The parser below reads both formats (slapd.conf ``attributetype``/``objectclass`` directives and
cn=config ``olcAttributeTypes``/``olcObjectClasses`` values) into one normalised form, so that two
definitions compare equal exactly when slapd would build the same schema element from them
(DESC aside: ours are written in our own words).
"""

from __future__ import annotations

import dataclasses
import io
import re
import shutil
import subprocess
from pathlib import Path

import ldif
import pytest

REPO = Path(__file__).resolve().parents[1]
SCHEMA_DIR = REPO / "schema"
UPSTREAM = REPO.parent / "shared" / "upstream"
SYSTEM_SCHEMA_DIR = Path("/etc/ldap/schema")
SYSTEM_SCHEMAS = ("core", "cosine", "nis", "inetorgperson")
# Load order matters: iredmail's object classes name amavisd's and the system schemas' attributes.
OUR_SCHEMAS = ("amavisd", "iredmail")

# Our file -> the upstream file it must be equivalent to.
UPSTREAM_PAIRS = {
    "iredmail.ldif": "iredmail.schema",
    "amavisd.ldif": "openldap/amavisd.schema",
}

ATTRIBUTE_TYPE = "attributetype"
OBJECT_CLASS = "objectclass"
LDIF_SCHEMA_ATTRS = {"olcattributetypes": ATTRIBUTE_TYPE, "olcobjectclasses": OBJECT_CLASS}


# --- normalised form --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Definition:
    """One attribute type or object class, with every field that changes what slapd builds.

    Names of schema elements (NAME aliases, SUP, matching rules, MUST/MAY) compare case-insensitively,
    as slapd resolves them; so they are stored lower-cased. DESC is not kept.
    """

    kind: str
    oid: str
    names: tuple[str, ...] = ()
    obsolete: bool = False
    sup: frozenset[str] = frozenset()
    # Attribute types only.
    equality: str | None = None
    ordering: str | None = None
    substr: str | None = None
    syntax: str | None = None
    single_value: bool = False
    collective: bool = False
    no_user_modification: bool = False
    usage: str | None = None
    # Object classes only.
    class_kind: str | None = None
    must: frozenset[str] = frozenset()
    may: frozenset[str] = frozenset()


# --- reading the two file formats -------------------------------------------------------------


def schema_conf_definitions(text: str) -> list[tuple[str, str]]:
    """(kind, body) for each attributetype/objectclass directive of a slapd.conf-style file.

    slapd.conf rules: '#' lines and blank lines are ignored; a line starting with whitespace
    continues the directive above it.
    """
    directives: list[str] = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line[0].isspace() and directives:
            directives[-1] += " " + line.strip()
        else:
            directives.append(line.strip())
    found = []
    for directive in directives:
        keyword, body = (directive.split(None, 1) + [""])[:2]
        if keyword.lower() in (ATTRIBUTE_TYPE, OBJECT_CLASS):
            found.append((keyword.lower(), body.strip()))
    return found


def ldif_definitions(text: str) -> list[tuple[str, str]]:
    """(kind, body) for each olcAttributeTypes/olcObjectClasses value of a cn=config LDIF
    (python-ldap's RFC 2849 parser: comments, folded lines, base64 values)."""
    records = ldif.LDIFRecordList(io.BytesIO(text.encode("utf-8")))
    records.parse()
    found = []
    for _, attributes in records.all_records:
        for name, values in attributes.items():
            kind = LDIF_SCHEMA_ATTRS.get(name.lower())
            # cn=config keeps values ordered with an "{n}" prefix; it is position, not content.
            found += [(kind, re.sub(r"^\{\d+\}", "", value.decode("utf-8").strip())) for value in values if kind]
    return found


# --- parsing one definition (RFC 4512 section 4.1 grammar, as slapd accepts it) ---------------

TOKEN = re.compile(r"\(|\)|\$|'[^']*'|[^\s()$']+")
FLAGS = {"OBSOLETE", "SINGLE-VALUE", "COLLECTIVE", "NO-USER-MODIFICATION"}
CLASS_KINDS = {"STRUCTURAL", "AUXILIARY", "ABSTRACT"}
SINGLE_VALUED_KEYWORDS = {"DESC", "EQUALITY", "ORDERING", "SUBSTR", "SYNTAX", "USAGE"}
LIST_KEYWORDS = {"NAME", "SUP", "MUST", "MAY"}


def tokenize(body: str) -> list[str]:
    # Whatever the token pattern does not cover (a stray quote, say) must not pass silently.
    if TOKEN.sub("", body).strip():
        raise ValueError(f"unexpected characters in definition: {body!r}")
    return TOKEN.findall(body)


def unquote(token: str) -> str:
    return token[1:-1] if token.startswith("'") else token


def take_list(tokens: list[str], pos: int) -> tuple[list[str], int]:
    """A single item, or '(' items ')' with items separated by '$' (oids) or by spaces (qdescrs)."""
    if tokens[pos] != "(":
        return [unquote(tokens[pos])], pos + 1
    end = tokens.index(")", pos)
    return [unquote(t) for t in tokens[pos + 1 : end] if t != "$"], end + 1


def parse_definition(kind: str, body: str) -> Definition:
    tokens = tokenize(body)
    if tokens[0] != "(" or tokens[-1] != ")":
        raise ValueError(f"definition not enclosed in parentheses: {body!r}")
    fields: dict[str, object] = {"kind": kind, "oid": tokens[1]}
    pos, end = 2, len(tokens) - 1
    while pos < end:
        keyword = tokens[pos].upper()
        if keyword in FLAGS:
            fields[keyword.lower().replace("-", "_")] = True
            pos += 1
        elif keyword in CLASS_KINDS:
            fields["class_kind"] = keyword
            pos += 1
        elif keyword in SINGLE_VALUED_KEYWORDS:
            fields[keyword.lower()] = unquote(tokens[pos + 1])
            pos += 2
        elif keyword in LIST_KEYWORDS:
            fields[keyword.lower()], pos = take_list(tokens, pos + 1)
        else:
            raise ValueError(f"unsupported keyword {tokens[pos]!r} in {body!r}")
    return normalise(fields)


def normalise(fields: dict) -> Definition:
    """Lower-case element names, make MUST/MAY/SUP sets, and fill in RFC 4512 defaults."""
    fields.pop("desc", None)
    fields["names"] = tuple(name.lower() for name in fields.pop("name", ()))
    for key in ("sup", "must", "may"):
        fields[key] = frozenset(name.lower() for name in fields.get(key, ()))
    for key in ("equality", "ordering", "substr"):
        if fields.get(key):
            fields[key] = fields[key].lower()
    if fields["kind"] == OBJECT_CLASS:
        fields.setdefault("class_kind", "STRUCTURAL")
    else:
        fields["usage"] = (fields.get("usage") or "userApplications").lower()
    return Definition(**fields)


def parse_file(path: Path) -> dict[str, Definition]:
    """OID -> definition for every attribute type and object class in a .schema or .ldif file."""
    text = path.read_text(encoding="utf-8")
    raw = ldif_definitions(text) if path.suffix == ".ldif" else schema_conf_definitions(text)
    definitions: dict[str, Definition] = {}
    for kind, body in raw:
        definition = parse_definition(kind, body)
        if definition.oid in definitions:
            raise ValueError(f"{path.name}: OID {definition.oid} defined twice")
        definitions[definition.oid] = definition
    return definitions


def differences(ours: dict[str, Definition], theirs: dict[str, Definition]) -> list[str]:
    """Human-readable list of every OID or field on which the two schemas disagree."""
    problems = [f"missing from ours: {oid} {theirs[oid].names}" for oid in sorted(theirs.keys() - ours)]
    problems += [f"not upstream: {oid} {ours[oid].names}" for oid in sorted(ours.keys() - theirs)]
    for oid in sorted(ours.keys() & theirs):
        mine, upstream = dataclasses.asdict(ours[oid]), dataclasses.asdict(theirs[oid])
        for field, value in mine.items():
            if value != upstream[field]:
                problems.append(f"{oid} {field}: ours={value!r} upstream={upstream[field]!r}")
    return problems


# --- the parser itself (no upstream files needed) --------------------------------------------

SAMPLE_CONF = """\
# a comment
attributetype ( 1.2.3.1 NAME ( 'fooName' 'foo' )
    DESC 'x' EQUALITY caseIgnoreIA5Match
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.26{64} SINGLE-VALUE )
objectclass ( 1.2.3.2 NAME 'fooThing' AUXILIARY
    DESC 'kind before DESC is accepted by slapd' SUP top
    MAY ( fooName $ cn ) )
"""

SAMPLE_LDIF = """\
# a comment
dn: cn=sample,cn=schema,cn=config
objectClass: olcSchemaConfig
olcAttributeTypes: {0}( 1.2.3.1 NAME ( 'FOONAME' 'foo' ) DESC 'y'
  EQUALITY caseIgnoreIA5Match SYNTAX 1.3.6.1.4.1.1466.115.121.1.26{64}
  SINGLE-VALUE )
olcObjectClasses: {0}( 1.2.3.2 NAME 'fooThing' SUP top AUXILIARY
  MAY ( cn $ fooname ) )
"""


def parse_text(tmp_path: Path, name: str, text: str) -> dict[str, Definition]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return parse_file(path)


def test_parser_reads_both_formats_to_the_same_definitions(tmp_path):
    conf = parse_text(tmp_path, "sample.schema", SAMPLE_CONF)
    ldif = parse_text(tmp_path, "sample.ldif", SAMPLE_LDIF)
    assert differences(ldif, conf) == []
    assert conf["1.2.3.1"].syntax == "1.3.6.1.4.1.1466.115.121.1.26{64}"
    assert conf["1.2.3.2"].may == {"fooname", "cn"}


def test_comparison_reports_a_changed_syntax_length(tmp_path):
    conf = parse_text(tmp_path, "sample.schema", SAMPLE_CONF)
    ldif = parse_text(tmp_path, "sample.ldif", SAMPLE_LDIF.replace("26{64}", "26{65}"))
    expected = "1.2.3.1 syntax: ours='{0}{{65}}' upstream='{0}{{64}}'".format("1.3.6.1.4.1.1466.115.121.1.26")
    assert differences(ldif, conf) == [expected]


def test_parser_rejects_unknown_keywords():
    with pytest.raises(ValueError, match="unsupported keyword"):
        parse_definition(ATTRIBUTE_TYPE, "( 1.2.3 NAME 'x' SYNTAXX 1.2 )")


# --- our files against upstream ----------------------------------------------------------------


@pytest.fixture
def upstream() -> Path:
    if not UPSTREAM.is_dir():
        pytest.skip(f"upstream reference files not found at {UPSTREAM} (../shared is absent)")
    return UPSTREAM


@pytest.mark.parametrize("ours, theirs", UPSTREAM_PAIRS.items())
def test_schema_defines_the_same_oids_as_upstream(upstream, ours, theirs):
    assert parse_file(SCHEMA_DIR / ours).keys() == parse_file(upstream / theirs).keys()


@pytest.mark.parametrize("ours, theirs", UPSTREAM_PAIRS.items())
def test_schema_definitions_equal_upstream(upstream, ours, theirs):
    assert differences(parse_file(SCHEMA_DIR / ours), parse_file(upstream / theirs)) == []


# --- slapd accepts the files --------------------------------------------------------------------

SUFFIX = "dc=example,dc=com"

CONFIG_LDIF = """\
dn: cn=config
objectClass: olcGlobal
cn: config

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: {module_dir}
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcDbDirectory: {db_dir}
olcSuffix: {suffix}
olcRootDN: cn=admin,{suffix}
"""

DATA_LDIF = f"""\
dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: o=domains,{SUFFIX}
objectClass: organization
o: domains

dn: domainName=example.com,o=domains,{SUFFIX}
objectClass: mailDomain
domainName: example.com
accountStatus: active
enabledService: mail
mtaTransport: dovecot

dn: ou=Users,domainName=example.com,o=domains,{SUFFIX}
objectClass: organizationalUnit
ou: Users

dn: mail=alice@example.com,ou=Users,domainName=example.com,o=domains,{SUFFIX}
objectClass: inetOrgPerson
objectClass: mailUser
objectClass: shadowAccount
objectClass: amavisAccount
mail: alice@example.com
uid: alice
cn: Alice
sn: Alice
userPassword: not-a-real-hash
homeDirectory: /var/vmail/vmail1/example.com/a/l/i/alice/
accountStatus: active
enabledService: mail
enabledService: deliver
mailQuota: 1073741824
amavisLocal: TRUE
shadowLastChange: 19000
preferredLanguage: en_US
accountSetting: create_new_domains:no
"""


def find_slap_tool(name: str) -> str | None:
    # Debian keeps slapadd/slaptest in /usr/sbin, which is often not on a normal user's PATH.
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")


def find_module_dir() -> Path | None:
    """Where this system's slapd keeps back_mdb as a loadable module (Debian: /usr/lib/ldap)."""
    candidates = ("/usr/lib/ldap", "/usr/lib64/openldap", "/usr/lib/openldap", "/usr/libexec/openldap")
    for directory in map(Path, candidates):
        if any(directory.glob("back_mdb*")):
            return directory
    return None


def run_tool(*args: str | Path) -> None:
    result = subprocess.run([str(a) for a in args], check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{' '.join(map(str, args))} exited {result.returncode}:\n{result.stderr}"


def test_slapd_loads_the_schemas_and_an_iredmail_user(tmp_path):
    slapadd, slaptest = find_slap_tool("slapadd"), find_slap_tool("slaptest")
    if not (slapadd and slaptest):
        pytest.skip("slapadd/slaptest not installed (Debian package: slapd)")
    module_dir = find_module_dir()
    if module_dir is None:
        pytest.skip("no back_mdb module found for slapd")
    system_schemas = [SYSTEM_SCHEMA_DIR / f"{name}.ldif" for name in SYSTEM_SCHEMAS]
    if not all(path.is_file() for path in system_schemas):
        pytest.skip(f"system schema LDIFs missing from {SYSTEM_SCHEMA_DIR}")

    config_dir, db_dir = tmp_path / "slapd.d", tmp_path / "db"
    config_dir.mkdir()
    db_dir.mkdir()
    config = tmp_path / "config.ldif"
    config.write_text(CONFIG_LDIF.format(module_dir=module_dir, db_dir=db_dir, suffix=SUFFIX))
    data = tmp_path / "data.ldif"
    data.write_text(DATA_LDIF)

    run_tool(slapadd, "-n0", "-F", config_dir, "-l", config)
    for schema in system_schemas + [SCHEMA_DIR / f"{name}.ldif" for name in OUR_SCHEMAS]:
        run_tool(slapadd, "-n0", "-F", config_dir, "-l", schema)
    run_tool(slaptest, "-F", config_dir, "-u")
    run_tool(slapadd, "-F", config_dir, "-b", SUFFIX, "-l", data)

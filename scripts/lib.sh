# shellcheck shell=bash
# Shared by scripts/run-local and scripts/run-tests (sourced, not run).
# Installs what a fresh Debian/Ubuntu machine lacks and keeps .venv in step with setup.cfg.

PROJECT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$PROJECT_DIR/.venv"
PYTHON="${PYTHON:-python3}"
POLICY_RC=/usr/sbin/policy-rc.d
POLICY_RC_SAVED=/usr/sbin/policy-rc.d.iredapi-saved

say() { printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2; }
die() { say "$*"; exit 1; }

# Run a command as root: directly when we are root, else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root for: $* (install sudo or run as root)"
    fi
}

installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

missing_packages() {
    local pkg
    for pkg in "$@"; do installed "$pkg" || printf '%s\n' "$pkg"; done
}

# System daemons an install of ours could start: name and the pid file its init script uses.
DAEMONS=(slapd:/run/slapd/slapd.pid postfix:/var/spool/postfix/pid/master.pid dovecot:/run/dovecot/master.pid)

with_systemd() { [ -d /run/systemd/system ]; }

daemon_running() {  # name pidfile
    local pid
    if with_systemd && systemctl is-active --quiet "$1" 2>/dev/null; then return 0; fi
    [ -r "$2" ] || return 1
    pid="$(head -n1 "$2" 2>/dev/null | tr -dc 0-9)"
    [ -n "$pid" ] && [ -d "/proc/$pid" ]
}

daemon_stop() {  # name pidfile
    local pid
    if with_systemd; then
        as_root systemctl stop "$1" && return 0
    fi
    as_root service "$1" stop >/dev/null 2>&1 && ! daemon_running "$1" "$2" && return 0
    pid="$(head -n1 "$2" 2>/dev/null | tr -dc 0-9)"
    [ -n "$pid" ] && as_root kill -TERM "$pid"
}

restore_policy_rc() {
    if [ -e "$POLICY_RC_SAVED" ]; then
        as_root mv -f "$POLICY_RC_SAVED" "$POLICY_RC"
    elif [ -e "$POLICY_RC" ] && grep -q 'iredapi-ldap' "$POLICY_RC" 2>/dev/null; then
        as_root rm -f "$POLICY_RC"
    fi
}

# apt_install PACKAGE...: install the missing ones without starting any daemon.
# Debconf answers: slapd stays unconfigured (the system slapd is none of ours),
# postfix gets "No configuration".
apt_install() {
    local missing name pidfile entry
    mapfile -t missing < <(missing_packages "$@")
    [ "${#missing[@]}" -eq 0 ] && return 0
    command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get: install them by hand"
    say "installing with apt: ${missing[*]}"
    printf '%s\n' \
        'slapd slapd/no_configuration boolean true' \
        'postfix postfix/main_mailer_type select No configuration' | as_root debconf-set-selections

    local -A was_running=()
    for entry in "${DAEMONS[@]}"; do
        name="${entry%%:*}" pidfile="${entry#*:}"
        daemon_running "$name" "$pidfile" && was_running[$name]=1
    done

    # policy-rc.d exit 101 = "do not start services" for invoke-rc.d and deb-systemd-invoke.
    if [ -e "$POLICY_RC" ] && ! grep -q 'iredapi-ldap' "$POLICY_RC" 2>/dev/null; then
        as_root mv -f "$POLICY_RC" "$POLICY_RC_SAVED"
    fi
    trap restore_policy_rc EXIT
    printf '#!/bin/sh\n# iredapi-ldap: no daemon starts while our packages install\nexit 101\n' \
        | as_root tee "$POLICY_RC" >/dev/null
    as_root chmod 755 "$POLICY_RC"

    local rc=0 log="${TMPDIR:-/tmp}/iredapi-ldap-apt.log"
    : > "$log"
    if [ -z "${APT_UPDATED:-}" ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >> "$log" 2>&1 || rc=$?
        APT_UPDATED=1
    fi
    if [ "$rc" -eq 0 ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" \
            >> "$log" 2>&1 || rc=$?
    fi
    restore_policy_rc
    trap - EXIT
    if [ "$rc" -ne 0 ]; then
        tail -n 30 "$log" >&2
        die "apt-get failed (exit $rc; whole log: $log)"
    fi
    say "installed ${missing[*]} (log: $log)"

    # Whatever the install started anyway is stopped; a daemon we brought in is not
    # started at boot either.  A daemon that ran before is left as it was.
    for entry in "${DAEMONS[@]}"; do
        name="${entry%%:*}" pidfile="${entry#*:}"
        [ -n "${was_running[$name]:-}" ] && continue
        if daemon_running "$name" "$pidfile"; then
            say "stopping the system $name that the install started"
            daemon_stop "$name" "$pidfile" || say "could not stop $name; stop it by hand"
        fi
        if with_systemd && printf '%s\n' "${missing[@]}" | grep -qx "$name\|${name}-core"; then
            as_root systemctl disable --quiet "$name" 2>/dev/null || true
        fi
    done
}

# Ubuntu confines /usr/sbin/slapd with AppArmor; let it use our folders too.
# (Debian ships no slapd profile: nothing to do there.)
allow_slapd_dirs() {
    local profile=/etc/apparmor.d/usr.sbin.slapd local_file=/etc/apparmor.d/local/usr.sbin.slapd dir rules=""
    [ -e "$profile" ] || return 0
    [ -e /etc/apparmor.d/disable/usr.sbin.slapd ] && return 0
    grep -qs Y /sys/module/apparmor/parameters/enabled || return 0
    command -v apparmor_parser >/dev/null 2>&1 || return 0
    for dir in "$@"; do
        grep -qsF "$dir/** rwk," "$local_file" && continue
        rules+="$dir rw,"$'\n'"$dir/ rw,"$'\n'"$dir/** rwk,"$'\n'
    done
    [ -z "$rules" ] && return 0
    say "allowing the confined slapd (AppArmor) to use: $*"
    printf '# added by iredapi-ldap scripts: private slapd instances\n%s' "$rules" \
        | as_root tee -a "$local_file" >/dev/null
    as_root apparmor_parser -r -T -W "$profile" || say "apparmor_parser failed; slapd may be denied its files"
}

check_python() {
    command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found (set PYTHON=/path/to/python3.11+)"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "$("$PYTHON" -V 2>&1) is too old: Python 3.11 or newer is needed (set PYTHON=...)"
}

# ensure_venv [EXTRAS [CONSTRAINTS]]: $VENV exists, and `pip install -e .[EXTRAS]` (with
# `-c CONSTRAINTS`, a file made from setup.cfg) has run for this setup.cfg + pyproject.toml
# in this folder.  A stamp in $VENV remembers "<hash of both files> <project folder>" and
# the extras installed.
ensure_venv() {
    local extras="${1:-}" constraints="${2:-}" stamp="$VENV/.iredapi-installed" want have="" spec=".${1:+[$1]}"
    want="$(cat "$PROJECT_DIR/setup.cfg" "$PROJECT_DIR/pyproject.toml" | sha256sum | cut -d' ' -f1) $PROJECT_DIR"
    [ -r "$stamp" ] && have="$(head -n1 "$stamp")"
    if [ -n "$have" ] && [ "${have#* }" != "$PROJECT_DIR" ]; then
        say "$VENV was made in ${have#* }: making it afresh"  # a copied venv's scripts point there
        rm -rf "$VENV"
        have=""
    fi
    if ! "$VENV/bin/python" -c '' 2>/dev/null; then
        check_python
        rm -rf "$VENV"
        say "creating $VENV"
        if ! "$PYTHON" -m venv "$VENV" >/dev/null 2>&1; then
            rm -rf "$VENV"
            local minor
            minor="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
            apt_install python3-venv
            if apt-cache show "python$minor-venv" >/dev/null 2>&1; then apt_install "python$minor-venv"; fi
            "$PYTHON" -m venv "$VENV" || die "$PYTHON -m venv failed"
        fi
        have=""
    fi
    if [ "$have" = "$want" ] && { [ -z "$extras" ] || grep -qx "extras $extras" "$stamp"; }; then
        return 0
    fi
    say "pip install -e '$spec' into $VENV (log: $VENV/pip-install.log)"
    if ! (cd "$PROJECT_DIR" && "$VENV/bin/python" -m pip install --disable-pip-version-check \
            ${constraints:+-c "$constraints"} -e "$spec") > "$VENV/pip-install.log" 2>&1; then
        tail -n 30 "$VENV/pip-install.log" >&2
        die "pip install -e '$spec' failed (whole log: $VENV/pip-install.log)"
    fi
    { echo "$want"; if [ -n "$extras" ]; then echo "extras $extras"; fi; } > "$stamp"
}

# lowest_pins: "name==version" for the lower bound (">=") of every requirement in setup.cfg,
# install_requires and the test extra; a requirement without one is an error.
lowest_pins() {
    "$PYTHON" - "$PROJECT_DIR/setup.cfg" <<'PY'
import configparser
import re
import sys

cfg = configparser.ConfigParser()
cfg.read(sys.argv[1])
requirements = cfg["options"]["install_requires"].splitlines() + cfg["options.extras_require"]["test"].splitlines()
missing = []
for line in filter(None, (r.strip() for r in requirements)):
    name = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line).group()
    lower = re.search(r">=\s*([^,;\s]+)", line)
    if lower:
        print(f"{name}=={lower.group(1)}")  # constraints take no [extras]: psycopg pins psycopg-binary itself
    else:
        missing.append(name)
if missing:
    sys.exit(f"setup.cfg: no lower bound (>=) for {', '.join(missing)}")
PY
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
phase_start() { PHASE_T0=$(now_ms); }
phase_end() { say "$1: $(( ($(now_ms) - PHASE_T0) / 1000 )).$(( ($(now_ms) - PHASE_T0) % 1000 / 100 ))s"; }

# pytest's arguments with "-n <processes>" (pytest-xdist) added unless the caller chose:
# the suite waits on slapd, Postfix, Dovecot and the SQL servers much of the time, so one
# process per core (IREDAPI_TEST_PROCESSES, default: the cores) roughly halves its time.
# "-n 0" or "-p no:xdist" runs it in one process.
PYTEST_ARGS=()
with_test_processes() {
    local arg
    for arg in "$@"; do
        case "$arg" in
            -n|-n*|--numprocesses|--numprocesses=*|no:xdist) PYTEST_ARGS=("$@"); return ;;
        esac
    done
    PYTEST_ARGS=(-n "${IREDAPI_TEST_PROCESSES:-$(nproc)}" "$@")
}

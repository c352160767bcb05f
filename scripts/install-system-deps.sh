#!/usr/bin/env bash
# The DEVELOPMENT and TEST set-up (scripts/demo, scripts/test and CI run it first).
# Not for a production server: it installs a mail server and a database for the
# tests, opens a PostgreSQL it installed to local TCP connections without a
# password, and puts mailbot into .venv editable (a `git pull` changes the code
# that runs) with the test tools. A server: scripts/install-production.sh.
#
# Install everything mailbot and its tests need, idempotently:
#   Debian packages: Dovecot (IMAP + LMTP; the tests and the demo start private
#   instances on loopback, while Debian also starts the system one on all interfaces),
#   OpenSSL with the GOST engine/provider, Chromium and chromedriver (browser tests),
#   PostgreSQL and systemd-analyze (when absent);
#   a Python virtual environment in .venv with mailbot (editable) and its test tools.
# Safe to run again: what is already there is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

quiet=0
[[ "${1:-}" == "--quiet" ]] && quiet=1
say() { [[ $quiet == 1 ]] || echo "install-system-deps: $*"; }

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-o DPkg::Lock::Timeout=300 -o Acquire::Retries=3)
SUDO=""
if [[ $(id -u) != 0 ]]; then
  SUDO="sudo"
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

packages=(dovecot-imapd dovecot-lmtpd libengine-gost-openssl openssl python3-venv)
# Headless Chromium and its WebDriver for the web console's browser tests (tests/web);
# browser downloads (Playwright, Selenium Manager) are not possible on the CI machines.
packages+=(chromium chromium-driver)
# systemd-analyze, for the test that verifies systemd/*.service. The 'systemd'
# package is safe in a container: it does not become PID 1 (that is
# systemd-sysv, which this script never installs) and its scripts skip
# daemon-reexec when systemd is not running. Only when the tool is absent:
# hosts booted with systemd always have it.
if ! command -v systemd-analyze >/dev/null 2>&1; then
  packages+=(systemd)
fi
installed_postgres_here=0
if ! command -v pg_ctlcluster >/dev/null 2>&1 && ! installed postgresql; then
  packages+=(postgresql)
  installed_postgres_here=1
fi
missing=()
for package in "${packages[@]}"; do
  installed "$package" || missing+=("$package")
done
if (( ${#missing[@]} )); then
  say "installing ${missing[*]}"
  $SUDO apt-get "${APT_OPTS[@]}" update -qq
  $SUDO apt-get "${APT_OPTS[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  say "Debian packages present"
fi

# PostgreSQL: start the cluster when it is not running (no systemd on CI machines).
if command -v pg_lsclusters >/dev/null 2>&1; then
  read -r version name _ status _ < <(pg_lsclusters --no-header | head -n 1) || true
  if [[ -n "${version:-}" && "${status:-}" != online ]]; then
    say "starting PostgreSQL cluster $version/$name"
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start || true
  fi
  if [[ $installed_postgres_here == 1 && -n "${version:-}" ]]; then
    # A server installed just now for the tests: let local TCP connections in
    # without a password, as on the development machines.
    hba="/etc/postgresql/$version/$name/pg_hba.conf"
    if ! grep -q "mailbot-tests" "$hba"; then
      $SUDO sed -i '1i host all all 127.0.0.1/32 trust  # mailbot-tests' "$hba"
      $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" "$name" reload || true
    fi
  fi
fi

# Python environment.
python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "install-system-deps: Python 3.11 or newer is required ($python is older)" >&2
  exit 1
fi
if [[ ! -x .venv/bin/python ]]; then
  say "creating .venv"
  "$python" -m venv .venv
fi
stamp=.venv/.mailbot-installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
  say "installing mailbot into .venv"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e '.[test]'
  touch "$stamp"
else
  say "Python environment up to date"
fi

#!/usr/bin/env bash
# Production install of mailbot on Debian 12, as root. Safe to run again (an upgrade
# after `git pull` is the same command):
#   Debian packages: python3-venv, openssl and its GOST engine; nothing else (no
#     Dovecot, no PostgreSQL: the mail server and the database are the site's own);
#   /opt/mailbot/venv: a virtual environment with mailbot installed from a wheel
#     built from this checkout (not editable, no test tools: the running code is
#     what was installed, not whatever the checkout holds later); the shipped rules
#     and templates in /opt/mailbot/venv/share/mailbot, the docs in /opt/mailbot/docs;
#   the system user and group "mailbot" (no login shell, home /var/lib/mailbot);
#   /etc/mailbot (root:mailbot 0750) with config.toml from config.example.toml, only
#     when there is none yet (root:mailbot 0640);
#   /var/lib/mailbot (mailbot:mailbot 0700), the state folder;
#   the systemd units of systemd/ in /etc/systemd/system (daemon-reload when systemd runs).
# Enabling a unit, passwords and `mailbot db upgrade` are left to the administrator
# (systemd/README.md). The development and test set-up is scripts/install-system-deps.sh.
#
# Environment (for tests and staging; the defaults are the production values):
#   MAILBOT_ROOT  install under this folder instead of / (every path above is
#                 prefixed, the units' paths too; systemd does not read units there)
#   MAILBOT_USER  the user and group to create and run as (default: mailbot)
#   APT_GET       the apt-get program (default: apt-get)
#   PYTHON        the Python the venv is made from (default: /usr/bin/python3)
set -euo pipefail
# The venv and the docs must be readable by the service user whatever root's umask is.
umask 022
checkout=$(cd "$(dirname "$0")/.." && pwd)
say() { echo "install-production: $*"; }
fail() { echo "install-production: $*" >&2; exit 1; }

root=${MAILBOT_ROOT:-}
root=${root%/}
[[ -z $root || $root == /* ]] || fail "MAILBOT_ROOT must be an absolute path"
user=${MAILBOT_USER:-mailbot}
apt_get=${APT_GET:-apt-get}
python=${PYTHON:-/usr/bin/python3}
prefix=$root/opt/mailbot
venv=$prefix/venv
etc=$root/etc/mailbot
state=$root/var/lib/mailbot
units=$root/etc/systemd/system

[[ $(id -u) == 0 ]] || fail "run as root (it creates a system user and installs into /opt, /etc)"

# 1. Debian packages: the venv module, openssl and the GOST engine it loads.
say "Debian packages"
export DEBIAN_FRONTEND=noninteractive
apt_options=(-o DPkg::Lock::Timeout=300 -o Acquire::Retries=3)
"$apt_get" "${apt_options[@]}" update -qq
"$apt_get" "${apt_options[@]}" install -y -qq --no-install-recommends \
  python3-venv openssl libengine-gost-openssl >/dev/null

# 2. The service user: a system account nobody logs in as.
if ! getent group "$user" >/dev/null; then
  say "creating group $user"
  groupadd --system "$user"
fi
if ! getent passwd "$user" >/dev/null; then
  say "creating user $user"
  useradd --system --gid "$user" --home-dir "$state" --no-create-home \
    --shell /usr/sbin/nologin --comment "mailbot daemon" "$user"
fi

# 3. The program: a wheel built from a clean copy of the checkout (a build inside
#    the checkout would leave build/ behind, whose stale files a later wheel keeps).
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/source"
# What the wheel is built from (pyproject.toml names README.md; rules and templates
# become data files under share/mailbot).
cp -r "$checkout"/{pyproject.toml,README.md,mailbot,rules,templates} "$work/source/"
find "$work/source" -name __pycache__ -prune -exec rm -rf {} +
if [[ ! -x $venv/bin/python ]]; then
  say "creating $venv"
  install -d -m 0755 "$prefix"
  "$python" -m venv "$venv"
fi
say "building and installing mailbot into $venv"
"$venv/bin/python" -m pip wheel -q --no-deps --wheel-dir "$work/wheel" "$work/source"
wheel=("$work"/wheel/mailbot-*.whl)
# The first installs what is missing (dependencies included); the second replaces
# mailbot itself even when the version number did not change.
"$venv/bin/python" -m pip install -q "${wheel[0]}"
"$venv/bin/python" -m pip install -q --no-deps --force-reinstall "${wheel[0]}"
# The units' Documentation= points here (already so when the checkout is /opt/mailbot,
# the layout of old installations).
if [[ ! "$checkout/docs" -ef "$prefix/docs" ]]; then
  install -d -m 0755 "$prefix/docs"
  install -m 0644 "$checkout"/docs/*.md "$prefix/docs/"
fi

# 4. Configuration and state. An existing config.toml is the administrator's: kept.
install -d -m 0750 -o root -g "$user" "$etc"
if [[ ! -e $etc/config.toml ]]; then
  say "writing $etc/config.toml (edit it, then: mailbot check-config --check-secrets)"
  install -m 0640 -o root -g "$user" "$checkout/config.example.toml" "$etc/config.toml"
fi
install -d -m 0700 -o "$user" -g "$user" "$state"

# 5. systemd units, their paths made to match this installation.
install -d -m 0755 "$units"
for unit in "$checkout"/systemd/mailbot*.service "$checkout"/systemd/mailbot*.timer; do
  sed -e "s|/opt/mailbot|$prefix|g" -e "s|/etc/mailbot|$etc|g" \
    -e "s|/var/lib/mailbot|$state|g" \
    -e "s|^User=mailbot\$|User=$user|" -e "s|^Group=mailbot\$|Group=$user|" \
    "$unit" >"$work/unit"
  install -m 0644 "$work/unit" "$units/$(basename "$unit")"
done
# /run/systemd/system exists only when systemd is PID 1 (sd_booted(3)).
if [[ -z $root && -d /run/systemd/system ]]; then
  systemctl daemon-reload
fi

say "done: $("$venv/bin/mailbot" --version)"
say "first install: edit $etc/config.toml, passwords in $etc/env, then systemd/README.md"
say "upgrade: mailbot db upgrade as $user, then systemctl restart mailbot (or the timer)"

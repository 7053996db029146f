#!/usr/bin/env bash
# Creates (or reuses) the virtualenv with the real OpenStack clients that the
# compatibility tests drive: python-openstackclient, openstacksdk,
# ansible-core and the openstack.cloud collection. Prints the virtualenv's
# path on stdout (the last line); everything else goes to stderr.
#
# The virtualenv lives in $CLOUD_COMPAT_CACHE (default
# ${XDG_CACHE_HOME:-$HOME/.cache}/cloud-compat) under venv-<hash>, where <hash> covers
# requirements.txt, this script and the Python interpreter, so reusing it
# is safe: a changed pin is a new virtualenv. Creation is serialised with flock (tests start in
# parallel) and only a finished virtualenv (marker file .complete) is reused.
# Virtualenvs of other pins that no run has used for 30 days are removed.
#
# openstack.cloud: Ansible Galaxy is not reachable, so the collection is
# taken from the 'ansible' distribution on PyPI (which bundles it):
# downloaded without dependencies, and only ansible_collections/openstack/
# copied into the virtualenv (a full 'ansible' install is ~50 MB of
# unrelated collections). It is taken from ansible 14 (openstack.cloud
# 2.6.0; the 2.5.0 of ansible 12 fails on openstacksdk 4.22 with "module
# 'openstack' has no attribute 'version'") although that release wants
# Python >= 3.12 for its ansible-core: the collection itself runs on the
# ansible-core 2.19 pinned in requirements.txt (Python 3.11).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
ANSIBLE_DIST="ansible==14.5.0"
python="${CLOUD_COMPAT_PYTHON:-python3}"  # the interpreter to build it with

# The interpreter is part of the key too: a virtualenv links to the Python
# that made it.
fail() {
    echo "compat/venv.sh: $*" >&2
    exit 1
}
pyinfo="$("$python" -c 'import sys; print(sys.version, sys.executable)')" ||
    fail "'$python' is not a usable Python interpreter (set CLOUD_COMPAT_PYTHON)"
hash="$( (cat "$here/requirements.txt" "$here/venv.sh"; echo "$pyinfo") | sha256sum | cut -c1-16)"
cache="${CLOUD_COMPAT_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/cloud-compat}"
venv="$cache/venv-$hash"
mkdir -p "$cache"

exec 9>"$cache/.lock-$hash"
flock 9

if [[ ! -f "$venv/.complete" ]]; then
    echo "compat/venv.sh: creating $venv" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv" >&2 ||
        fail "'$python -m venv' failed (Debian: apt-get install python3-venv)"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        --requirement "$here/requirements.txt" >&2 ||
        fail "installing compat/requirements.txt from PyPI failed (is PyPI reachable?)"
    dl="$(mktemp -d)"
    trap 'rm -rf "$dl"' EXIT
    "$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps \
        --python-version 3.12 --only-binary=:all: --dest "$dl" "$ANSIBLE_DIST" >&2 ||
        fail "downloading $ANSIBLE_DIST from PyPI failed (is PyPI reachable?)"
    "$venv/bin/python" - "$dl" "$venv/collections" <<'PY' >&2
import pathlib, sys, zipfile
src, dest = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
(wheel,) = src.glob("ansible-*.whl")
prefix = "ansible_collections/openstack/cloud/"
with zipfile.ZipFile(wheel) as z:
    members = [m for m in z.namelist() if m.startswith(prefix)]
    if not members:
        sys.exit(f"{wheel.name} has no {prefix}")
    z.extractall(dest, members)
print(f"openstack.cloud: {len(members)} files from {wheel.name}")
PY
    "$venv/bin/openstack" --version >&2
    touch "$venv/.complete"
fi
# Mark ours as used, and drop virtualenvs of other pins unused for 30 days.
touch "$venv/.complete"
find "$cache" -mindepth 2 -maxdepth 2 -path "$cache/venv-*/.complete" -mtime +30 \
    -printf '%h\n' | while read -r old; do
    if [[ "$old" != "$venv" ]]; then
        rm -rf "$old" "$cache/.lock-${old##*/venv-}"
    fi
done
echo "$venv"

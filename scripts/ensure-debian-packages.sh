#!/usr/bin/env bash
# Installs the Debian packages named as arguments when they are missing (e.g. python3-h5py
# python3-numpy for the hdf5 backend's interoperability tests). Runs `apt-get update` only
# when something is missing. Needs root (or passwordless sudo) to install; says what it does.
set -euo pipefail
if [ "$#" -eq 0 ]; then
  echo "usage: $0 PACKAGE..." >&2
  exit 2
fi
# Test files run in parallel and may ask at once: one installer at a time (dpkg allows no more).
# The lock is this script itself, so no lock file is left anywhere.
exec 9<"$0"
flock -w 900 9 || { echo "ensure-debian-packages: waited 15 minutes for another install to finish" >&2; exit 1; }
missing=()
for pkg in "$@"; do
  if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    :
  else
    missing+=("$pkg")
  fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "ensure-debian-packages: already installed: $*"
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO=(sudo -n)
else
  echo "ensure-debian-packages: missing ${missing[*]}, and installing needs root: run 'apt-get install ${missing[*]}' as root" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "ensure-debian-packages: missing ${missing[*]}; running apt-get update"
"${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq
echo "ensure-debian-packages: running apt-get install -y --no-install-recommends ${missing[*]}"
"${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
echo "ensure-debian-packages: installed ${missing[*]}"

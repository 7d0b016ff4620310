#!/bin/sh
# Debian packages mukaika needs at run time (libmagic for type detection). Installs only what
# is missing; needs root (or sudo) the first time.
set -eu
need=""
for pkg in "$@" libmagic1; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need="$need $pkg"
done
[ -z "$need" ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need

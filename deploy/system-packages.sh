#!/bin/sh
# Debian packages mukaika needs at run time (libmagic for type detection, unar for the data
# of compressed RAR archives, libpq5 for a store on PostgreSQL), plus the test
# packages named as arguments (the Makefile's TEST_PACKAGES). Installs only what is missing;
# needs root (or sudo) the first time.
set -eu
need=""
for pkg in "$@" libmagic1 unar libpq5; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need="$need $pkg"
done
[ -z "$need" ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
case " $need " in
*" postfix "*)
    # Postfix is only a test fixture (the LGWAN-side MTA of tests/deploy): answer its
    # installer's question in advance so the install never stops at a prompt, and leave the
    # system's own /etc/postfix unconfigured (the test runs a private instance).
    echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
    ;;
esac
case " $need " in
*" postgresql "*)
    # PostgreSQL is only a test fixture (tests/postgres.py starts a private cluster as an
    # unprivileged user): the package must not create and start a system cluster of its own.
    $SUDO mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.d/mukaika-tests.conf >/dev/null
    ;;
esac
# MIMEDefang (a peer of the relay benchmark), Knot DNS (the sender authentication tests'
# DNS server) and slapd (the directory tests' LDAP server) run only as private instances:
# their own services must not start at install.
# Where no policy-rc.d says otherwise, one is put in place for the install and removed
# afterwards.
guard=""
case " $need " in
*" mimedefang "*|*" knot "*|*" slapd "*)
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod +x /usr/sbin/policy-rc.d
        guard=yes
    fi
    ;;
esac
$SUDO apt-get update -qq
status=0
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need || status=$?
[ -n "$guard" ] && $SUDO rm -f /usr/sbin/policy-rc.d
exit $status

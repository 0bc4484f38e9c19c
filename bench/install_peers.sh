#!/bin/sh
# Installs the peers of the CalDAV benchmark into a scratch folder, as
# /work/shared/peers/README.md describes: Radicale and Xandikos in a venv
# from PyPI, Cyrus IMAP (CalDAV + calalarmd) from Debian packages, with the
# shared Cyrus configuration. Nothing is vendored into the repository.
#
#     bench/install_peers.sh DIR        # e.g. DIR=$(mktemp -d)
#
# The benchmark (bench/README.md) then starts and stops the peers itself.
set -eu
PEERS=${1:?usage: install_peers.sh DIR}
SHARED=${SHARED_PEERS:-/work/shared/peers}
mkdir -p "$PEERS"
PEERS=$(cd "$PEERS" && pwd)

python3 -m venv "$PEERS/venv"
"$PEERS/venv/bin/pip" install -q radicale xandikos

if ! [ -x /usr/lib/cyrus/bin/master ]; then
    apt-get update -q
    apt-get install -y -q cyrus-imapd cyrus-caldav cyrus-admin sasl2-bin
fi
mkdir -p "$PEERS/cyrus/conf" "$PEERS/cyrus/spool"
for f in imapd.conf cyrus.conf notify.sh; do
    sed "s#@PEERS@#$PEERS#g" "$SHARED/cyrus/$f" > "$PEERS/cyrus/$f"
done
chmod +x "$PEERS/cyrus/notify.sh"
echo -n test | saslpasswd2 -p -c -f "$PEERS/cyrus/sasldb2" test
chown -R cyrus:mail "$PEERS/cyrus"
echo "peers installed in $PEERS"

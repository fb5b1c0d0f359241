#!/bin/sh
# Entry point of compose.yml's `mosquitto` service (eclipse-mosquitto image, run as root):
# writes the two password files from the environment and gauges.txt, puts the shipped
# ACLs beside them, then hands over to the image's own entry point, which drops to the
# `mosquitto` user.
#
#   entrypoint.sh          start the broker
#   entrypoint.sh reload   after editing gauges.txt: rewrite the password files and ACLs and
#                          make the running broker re-read them (SIGHUP), with no restart:
#                          docker compose exec mosquitto sh /etc/floodwatch/mosquitto/entrypoint.sh reload
set -eu

here=$(dirname "$0")
config=/mosquitto/config

install_auth() {
    PASSWD_DIR="$config" GAUGES_FILE="$here/gauges.txt" sh "$here/mkpasswd.sh"
    for acl in acl-gauges acl-services; do
        cp "$here/$acl" "$config/$acl.new"
        mv -f "$config/$acl.new" "$config/$acl"
    done
    # The single password file and ACL of releases before the two listeners.
    rm -f "$config/passwd" "$config/acl"
    # Mosquitto 2.0 warns about security files other users can read (later versions refuse
    # them), and reads them after dropping to the `mosquitto` user.
    for file in passwd-gauges passwd-services acl-gauges acl-services; do
        chown mosquitto:mosquitto "$config/$file"
        chmod 0600 "$config/$file"
    done
}

install_auth
if [ "${1:-}" = reload ]; then
    kill -HUP 1
    echo "entrypoint: the broker re-reads its password files and ACLs"
    exit 0
fi
exec /docker-entrypoint.sh /usr/sbin/mosquitto -c "$here/mosquitto.conf"

#!/bin/sh
# Writes Mosquitto's two password files from the environment and the gauges file, so that
# no password file is kept by hand and none is committed. Run at every broker start by
# entrypoint.sh (compose.yml); POSIX sh, as the eclipse-mosquitto image has only busybox.
#
#   MQTT_FLOODWATCH_PASSWORD  the service account `floodwatch` (required). It also goes
#                             into FLOODWATCH_MQTT_URL, so it is limited to URL-safe
#                             characters: letters, digits, - _ . ~
#   MQTT_VIEWER_PASSWORD      the read-only account `viewer` (required)
#   GAUGES_FILE               one `station_id:password` per line; `#` comments and blank
#                             lines are skipped; absent means no gauge accounts yet
#   PASSWD_DIR                where to write (default /mosquitto/config):
#                               passwd-services  `floodwatch`, for listener 1884
#                               passwd-gauges    `viewer` and the gauges, for listener 1883
#
# Each file is written beside its target and renamed into place, so a broker reloading
# (SIGHUP) never reads half of one. Passwords are never printed. A gauge id may not start
# with "floodwatch": on listener 1883 the username is the client id, and the services'
# client ids start so (a gauge account must never be able to take one over).
set -eu

PASSWD_DIR=${PASSWD_DIR:-/mosquitto/config}
GAUGES_FILE=${GAUGES_FILE:-/etc/floodwatch/mosquitto/gauges.txt}

fail() {
    echo "mkpasswd: $*" >&2
    exit 1
}

url_safe() {
    case $1 in
        "" | *[!A-Za-z0-9._~-]*) return 1 ;;
    esac
    return 0
}

[ -n "${MQTT_FLOODWATCH_PASSWORD:-}" ] || fail "MQTT_FLOODWATCH_PASSWORD is not set (see deploy/floodwatch.env.example)"
[ -n "${MQTT_VIEWER_PASSWORD:-}" ] || fail "MQTT_VIEWER_PASSWORD is not set (see deploy/floodwatch.env.example)"
url_safe "$MQTT_FLOODWATCH_PASSWORD" ||
    fail "MQTT_FLOODWATCH_PASSWORD may only hold letters, digits, - _ . ~ (it is part of FLOODWATCH_MQTT_URL)"

umask 077
services="$PASSWD_DIR/passwd-services.new.$$"
tmp="$PASSWD_DIR/passwd-gauges.new.$$"
trap 'rm -f "$tmp" "$services"' EXIT
: >"$services"
: >"$tmp"
mosquitto_passwd -b "$services" floodwatch "$MQTT_FLOODWATCH_PASSWORD"
mosquitto_passwd -b "$tmp" viewer "$MQTT_VIEWER_PASSWORD"

gauges=0
if [ -f "$GAUGES_FILE" ]; then
    seen=" floodwatch viewer "
    line_no=0
    # `|| [ -n "$line" ]` keeps a last line without a newline.
    while IFS= read -r line || [ -n "$line" ]; do
        line_no=$((line_no + 1))
        line=$(printf '%s' "$line" | tr -d '\r')
        case $line in
            "" | "#"*) continue ;;
            *:*) ;;
            *) fail "$GAUGES_FILE line $line_no: expected station_id:password" ;;
        esac
        id=${line%%:*}
        password=${line#*:}
        # The ACL's `pattern write floodwatch/gauges/%u/level` makes the username the
        # station id, so it must be one: [a-z0-9-]{1,64}.
        case $id in
            "" | *[!a-z0-9-]*) fail "$GAUGES_FILE line $line_no: '$id' is not a station id ([a-z0-9-], 1-64 characters)" ;;
        esac
        [ ${#id} -le 64 ] || fail "$GAUGES_FILE line $line_no: '$id' is longer than 64 characters"
        case $id in
            floodwatch*) fail "$GAUGES_FILE line $line_no: '$id' starts with 'floodwatch', which is kept for the services' client ids" ;;
        esac
        [ -n "$password" ] || fail "$GAUGES_FILE line $line_no: '$id' has an empty password"
        case $seen in
            *" $id "*) fail "$GAUGES_FILE line $line_no: '$id' is listed twice or is a reserved account name" ;;
        esac
        seen="$seen$id "
        mosquitto_passwd -b "$tmp" "$id" "$password"
        gauges=$((gauges + 1))
    done <"$GAUGES_FILE"
fi

mv -f "$services" "$PASSWD_DIR/passwd-services"
mv -f "$tmp" "$PASSWD_DIR/passwd-gauges"
trap - EXIT
echo "mkpasswd: wrote $PASSWD_DIR/passwd-services (floodwatch) and passwd-gauges (viewer and $gauges gauge account(s))"

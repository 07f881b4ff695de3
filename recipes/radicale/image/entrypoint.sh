#!/bin/sh
# Adds the first admin user to the htpasswd file in the data volume when it is
# missing (the password comes from the admin_password Swarm secret and is never
# printed), then runs Radicale.
set -eu

data=/var/lib/radicale
users="$data/users"
admin="${RADICALE_ADMIN_USER:-admin}"
secret=/run/secrets/admin_password

case "$admin" in
  ""|*[!A-Za-z0-9._@-]*)
    echo "radicale: ADMIN_USER '$admin' may use only letters, digits and . _ @ -" >&2
    exit 1 ;;
esac

umask 077
mkdir -p "$data/collections"
[ -e "$users" ] || : > "$users"

if ! grep -q "^${admin}:" "$users"; then
  if [ ! -r "$secret" ]; then
    echo "radicale: $secret is missing; cannot create the admin user '$admin'" >&2
    exit 1
  fi
  radicale-passwd "$admin" < "$secret"
  echo "radicale: created the admin user '$admin'"
fi

exec "$@"

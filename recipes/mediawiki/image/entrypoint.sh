#!/bin/sh
# MediaWiki's start: wait for MariaDB, install the wiki on the first start (LocalSettings.php
# into the data volume) or bring its database schema up to date on later ones, then Apache.
set -eu

STATE=/var/lib/mediawiki
SETTINGS="$STATE/LocalSettings.php"
MW=/usr/share/mediawiki
: "${MW_DB_HOST:=db}" "${MW_DB_NAME:=mediawiki}" "${MW_DB_USER:=mediawiki}"
: "${WIKI_NAME:=My Wiki}" "${ADMIN_USER:=Admin}" "${SERVER_URL:=http://mediawiki.localhost}"
: "${ANONYMOUS_EDITS:=no}"
export MW_DB_HOST MW_DB_NAME MW_DB_USER WIKI_NAME ADMIN_USER SERVER_URL ANONYMOUS_EDITS

for secret in db_password admin_password secret_key; do
    if [ ! -s "/run/secrets/$secret" ]; then
        echo "mediawiki: the secret /run/secrets/$secret is missing" >&2
        exit 78
    fi
done
case "$ANONYMOUS_EDITS" in yes | no) ;; *)
    echo "mediawiki: ANONYMOUS_EDITS must be yes or no, not '$ANONYMOUS_EDITS'" >&2; exit 64 ;;
esac
if ! printf '%s' "$SERVER_URL" | grep -Eqx 'https?://[A-Za-z0-9.-]+(:[0-9]+)?'; then
    echo "mediawiki: SERVER_URL '$SERVER_URL' is not like https://wiki.example.org" >&2
    exit 64
fi

# MariaDB starts alongside (or restarts with us): wait up to 5 minutes for our login.
wait_for_db() {
    echo "mediawiki: waiting for the database at $MW_DB_HOST"
    php -r '
        mysqli_report(MYSQLI_REPORT_OFF);
        $password = trim(file_get_contents("/run/secrets/db_password"));
        for ($i = 0; $i < 150; $i++) {
            $db = @new mysqli(getenv("MW_DB_HOST"), getenv("MW_DB_USER"), $password, getenv("MW_DB_NAME"));
            if (!$db->connect_errno) { exit(0); }
            sleep(2);
        }
        fwrite(STDERR, "mediawiki: the database did not answer within 5 minutes\n");
        exit(1);
    '
}
wait_for_db

if [ ! -f "$SETTINGS" ]; then
    echo "mediawiki: first start, installing the wiki '$WIKI_NAME' (admin: $ADMIN_USER)"
    work=$(mktemp -d /tmp/mw-install.XXXXXX)
    php "$MW/maintenance/install.php" \
        --confpath "$work" --server "$SERVER_URL" --scriptpath "" --lang en \
        --dbtype mysql --dbserver "$MW_DB_HOST" --dbname "$MW_DB_NAME" \
        --dbuser "$MW_DB_USER" --dbpassfile /run/secrets/db_password \
        --passfile /run/secrets/admin_password \
        "$WIKI_NAME" "$ADMIN_USER"
    # Keep no secret in the data volume: the installation's secrets are read at run time.
    sed -e '/^\$wgDBpassword *=/d' -e '/^\$wgSecretKey *=/d' -e '/^\$wgUpgradeKey *=/d' \
        "$work/LocalSettings.php" > "$work/LocalSettings.new"
    cat >> "$work/LocalSettings.new" <<'PHP'

# Commonshelf: secrets and settings of this installation (keep this line last).
require_once '/usr/share/commonshelf/mediawiki-settings.php';
PHP
    chmod 0640 "$work/LocalSettings.new"
    mv "$work/LocalSettings.new" "$SETTINGS.partial"
    mv "$SETTINGS.partial" "$SETTINGS"
    rm -rf "$work"
    echo "mediawiki: installed"
else
    # The database may restart right after answering (a restart of the whole stack):
    # update.php is safe to run again, so try a few times.
    tries=1
    until echo "mediawiki: bringing the database schema up to date" &&
          php "$MW/maintenance/update.php" --quick; do
        if [ "$tries" -ge 5 ]; then
            echo "mediawiki: update.php failed $tries times; giving up" >&2
            exit 1
        fi
        tries=$((tries + 1))
        sleep 5
        wait_for_db
    done
fi

set +u
. /etc/apache2/envvars
exec /usr/sbin/apache2 -DFOREGROUND "$@"

#!/usr/bin/env bash
# Upload public/ (the signed TUF repository and its index.html) to the static host.
#
#   ci/publish.sh DESTINATION        rsync syntax: user@host:/srv/commonshelf/ or a folder
#
# In the order that keeps every reader consistent: first the targets and the versioned
# metadata (new files under new names: nothing a reader uses changes), then
# metadata/timestamp.json, whose replacement makes the new state visible, then the page.
# Nothing is deleted: a reader that fetched the old timestamp a moment ago still finds the
# snapshot and targets it names. Each file lands whole (rsync writes a temporary file and
# renames it). Hidden files (a publish's temporaries) are never uploaded.
#
# Over SSH: PUBLISH_SSH_KEY holds the private key (its content) and PUBLISH_KNOWN_HOSTS the
# host's known_hosts line; both are written to a private temporary folder, removed on exit.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

dest=${1:-}
if [ -z "$dest" ]; then
  echo "error: no destination. Fix: ci/publish.sh user@host:/srv/commonshelf/ (or a folder)." >&2
  exit 2
fi
if [ ! -f public/metadata/timestamp.json ]; then
  echo "error: public/ holds no signed repository. Fix: run invoke release first." >&2
  exit 2
fi
if ! command -v rsync >/dev/null 2>&1; then
  echo "error: rsync is missing. Fix: apt-get install -y rsync" >&2
  exit 2
fi
dest="${dest%/}/"

ssh_options=()
if [ -n "${PUBLISH_SSH_KEY:-}" ]; then
  private=$(mktemp -d)
  trap 'rm -rf "$private"' EXIT
  (umask 077 && printf '%s\n' "$PUBLISH_SSH_KEY" > "$private/key")
  printf '%s\n' "${PUBLISH_KNOWN_HOSTS:-}" > "$private/known_hosts"
  ssh_options=(-e "ssh -i $private/key -o UserKnownHostsFile=$private/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes")
fi

copy=(rsync --recursive --times --chmod=D755,F644 --exclude='.*' --itemize-changes "${ssh_options[@]}")
# 1. targets and versioned metadata: new names, invisible until the timestamp names them
"${copy[@]}" --exclude=/metadata/timestamp.json --exclude=/index.html public/ "$dest"
# 2. the timestamp: readers see the new repository from here on (compared by content: two
#    publishes within a second can leave the same size and mtime)
"${copy[@]}" --checksum public/metadata/timestamp.json "${dest}metadata/"
# 3. the page for people (not signed; it describes what is now published)
if [ -f public/index.html ]; then
  "${copy[@]}" --checksum public/index.html "$dest"
fi
echo "Published public/ to $dest"

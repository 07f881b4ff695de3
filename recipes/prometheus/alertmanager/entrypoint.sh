#!/bin/sh
# Start Alertmanager with the operator's alertmanager.yml from the data volume if
# there is one, else the built-in one. A single instance: no cluster gossip.
set -eu
config=/etc/prometheus/alertmanager.yml
if [ -f /var/lib/alertmanager/alertmanager.yml ]; then
    config=/var/lib/alertmanager/alertmanager.yml
fi
amtool check-config "$config" >&2
echo "alertmanager: using $config" >&2
exec prometheus-alertmanager \
    --config.file="$config" \
    --storage.path=/var/lib/alertmanager \
    --web.listen-address=0.0.0.0:9093 \
    --cluster.listen-address= \
    "$@"

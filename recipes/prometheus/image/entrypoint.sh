#!/bin/sh
# Fill the recipe's settings into Prometheus' configuration, check it, start Prometheus.
set -eu

SCRAPE_INTERVAL=${SCRAPE_INTERVAL:-15s}
RETENTION=${RETENTION:-15d}

if ! printf '%s' "$SCRAPE_INTERVAL" | grep -Eqx '[1-9][0-9]*(s|m)'; then
    echo "prometheus: SCRAPE_INTERVAL '$SCRAPE_INTERVAL' is not like 15s or 1m" >&2
    exit 2
fi
if ! printf '%s' "$RETENTION" | grep -Eqx '[1-9][0-9]*(h|d|w|y)'; then
    echo "prometheus: RETENTION '$RETENTION' is not like 15d, 12w or 1y" >&2
    exit 2
fi

# A scrape may take at most 10 s, and never longer than the interval itself.
case "$SCRAPE_INTERVAL" in
    *m) SCRAPE_TIMEOUT=10s ;;
    *s) n=${SCRAPE_INTERVAL%s}; if [ "$n" -lt 10 ]; then SCRAPE_TIMEOUT="${n}s"; else SCRAPE_TIMEOUT=10s; fi ;;
esac

mkdir -p /var/lib/prometheus/metrics2 /var/lib/prometheus/rules
sed -e "s/@SCRAPE_INTERVAL@/$SCRAPE_INTERVAL/g" -e "s/@SCRAPE_TIMEOUT@/$SCRAPE_TIMEOUT/g" \
    /etc/prometheus/prometheus.yml.in > /run/prometheus/prometheus.yml
promtool check config /run/prometheus/prometheus.yml >&2

echo "prometheus: scraping every $SCRAPE_INTERVAL, keeping $RETENTION of metrics" >&2
exec prometheus \
    --config.file=/run/prometheus/prometheus.yml \
    --storage.tsdb.path=/var/lib/prometheus/metrics2 \
    --storage.tsdb.retention.time="$RETENTION" \
    --web.listen-address=0.0.0.0:9090 \
    --web.console.templates=/etc/prometheus/consoles \
    --web.console.libraries=/etc/prometheus/console_libraries \
    "$@"

#!/usr/bin/env bash
# The web UI's speed and weight, in one run:
#
# 1. Server time per page — home, search (a word, and the word misspelt) and a plugin's page —
#    over a catalogue of COUNT plugins (default 100,000) written by `catalog-gen`: wrk with one
#    client (p50, p99: the page's own time), then with 64 (-t2 -c64: p50, p99, pages/s, and the
#    server's CPU time per page from /proc, less disturbed by wrk's share of the two cores),
#    each for SECONDS (default 10) after a 2 s warm-up.
# 2. A first visit to each main page: the bytes the page, its stylesheet and script take.
# 3. Beside Verdaccio's web UI (npm `verdaccio`), on the same handful of packages (Aerie's
#    hello, greeter and greeter-client; three npm packages of the same names and descriptions):
#    bytes of a first visit as Chromium fetches it (empty cache, headers included) and the time
#    until the page shows its list, median of 5 (browser/first-visit.mjs).
#
#   bench/web-pages.sh AERIE CATALOG_GEN PACKAGES_DIR [COUNT] [SECONDS]
#
# AERIE and CATALOG_GEN are release binaries (`cargo build --release -p aerie-cli -p
# aerie-bench`); PACKAGES_DIR holds hello.aerie, greeter.aerie and greeter-client.aerie (the test
# suite builds them into target/test-plugin-builds/packages). Needs wrk, curl, python3, node
# with `npm ci --prefix browser` done, and Chromium. Servers listen on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
aerie=$(realpath "$1") generate=$(realpath "$2") packages=$(realpath "$3")
count=${4:-100000} seconds=${5:-10}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
port=7941

wait_ready() {
    for _ in $(seq 600); do
        curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "the server on $port did not become ready" >&2
    exit 1
}

serve() {
    AERIE_DATA_DIR=$1 AERIE_LISTEN=127.0.0.1:$port AERIE_ADMIN_PASSWORD=benchpass \
        AERIE_LOG=warn AERIE_REQUIRE_SIGNATURE=false AERIE_READS_PER_MINUTE=1000000000 \
        AERIE_SEARCHES_PER_MINUTE=1000000000 AERIE_WRITES_PER_MINUTE=1000000000 \
        AERIE_LOGINS_PER_MINUTE=1000000000 "$aerie" serve &
    wait_ready
}

# One client's p50 / p99 (the time a page takes the server, no queue), then 64 clients' p50 /
# p99 and pages/s, and the server's CPU microseconds per page under that load, of wrk on URL.
measure() {
    local pid ticks_before ticks_after one out
    pid=$(jobs -p | tail -n 1)
    wrk -t2 -c64 -d2s "$1" >/dev/null
    one=$(wrk -t1 -c1 -d"${seconds}s" --latency "$1" | awk '/^ +50%/ {p50 = $2} /^ +99%/ {p99 = $2}
        END {printf "%s / %s", p50, p99}')
    ticks_before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    out=$(wrk -t2 -c64 -d"${seconds}s" --latency "$1")
    ticks_after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    echo "$out" | awk -v one="$one" -v ticks=$((ticks_after - ticks_before)) -v hz="$(getconf CLK_TCK)" '
        /^ +50%/ {p50 = $2} /^ +99%/ {p99 = $2} /Requests\/sec/ {rps = $2}
        / requests in / {requests = $1} /Non-2xx/ {bad = $NF}
        END {printf "| %s | %s / %s | %.0f | %.0f µs |%s\n", one, p50, p99, rps, ticks / hz * 1e6 / requests,
             bad ? " (" bad " not 2xx!)" : ""}'
}

# The bytes of PATH's body and of the stylesheet and script it links, as they are and as
# sent gzipped to a browser that accepts it.
weight() {
    local page css js plain=0 gzipped=0 url
    page=$(curl -fs "http://127.0.0.1:$port$1")
    css=$(grep -o '/static/[^"]*\.css' <<<"$page" | head -n 1)
    js=$(grep -o '/static/[^"]*\.js' <<<"$page" | head -n 1)
    for url in "$1" "$css" "$js"; do
        plain=$((plain + $(curl -fs -o /dev/null -w '%{size_download}' "http://127.0.0.1:$port$url")))
        gzipped=$((gzipped + $(curl -fs -H 'Accept-Encoding: gzip' -o /dev/null -w '%{size_download}' \
            "http://127.0.0.1:$port$url")))
    done
    printf '| %s | %d B | %d B | %d B | %d B | %d B |\n' "$1" "${#page}" \
        "$(curl -fs "http://127.0.0.1:$port$css" | wc -c)" \
        "$(curl -fs "http://127.0.0.1:$port$js" | wc -c)" "$plain" "$gzipped"
}

field() { python3 -c "import json, sys; hit = json.load(sys.stdin)['hits'][0]; print($1)"; }

echo "## $count plugins"
started=$(date +%s)
mkdir -p "$work/big"
"$generate" "sqlite://$work/big/aerie.db" "$count" >/dev/null
echo "generated in $(( $(date +%s) - started )) s"
started=$(date +%s)
serve "$work/big"
echo "ready (search index built) in $(( $(date +%s) - started )) s"
search="http://127.0.0.1:$port/api/v1/search?sort=downloads&per_page=1"
plugin=$(curl -fs "$search" | field "hit['name']")
word=$(curl -fs "$search" | field "hit['description'].split()[0].lower().strip('.,')")
typo="${word:0:1}${word:2}"
echo
echo "| page | one client: p50 / p99 | 64 clients: p50 / p99 | pages/s | server CPU per page |"
echo "|---|---|---|---|---|"
for path in / "/search?q=$word" "/search?q=$typo" "/plugins/$plugin"; do
    printf '| `%s` ' "$path"
    measure "http://127.0.0.1:$port$path"
done
echo
echo "| first visit | page | stylesheet | script | total | total, gzipped |"
echo "|---|---|---|---|---|---|"
for path in / "/search?q=$word" "/plugins/$plugin" /login; do
    weight "$path"
done
kill "$(jobs -p | tail -n 1)"
wait 2>/dev/null || true

echo
echo "## Beside Verdaccio, on the same three packages"
serve "$work/small"
token=$(curl -fs -u admin:benchpass -H 'content-type: application/json' \
    -d '{"name":"bench","scopes":["publish"]}' "127.0.0.1:$port/api/v1/tokens" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
curl -fs -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d '{"name":"examples","require_signature":false}' "127.0.0.1:$port/api/v1/namespaces" >/dev/null
for plugin in greeter hello greeter-client; do
    curl -fs -X PUT -H "authorization: Bearer $token" -H 'content-type: application/gzip' \
        --data-binary "@$packages/$plugin.aerie" \
        "127.0.0.1:$port/api/v1/plugins/examples/$plugin/0.1.0" >/dev/null
done

npm install --prefix "$work/verdaccio" --no-audit --no-fund --silent verdaccio@6 >/dev/null
verdaccio_version=$(node -p "require('$work/verdaccio/node_modules/verdaccio/package.json').version")
cat >"$work/verdaccio/config.yaml" <<YAML
storage: $work/verdaccio/storage
auth:
  htpasswd:
    file: $work/verdaccio/htpasswd
    max_users: 10
uplinks: {}
packages:
  '**':
    access: \$all
    publish: \$authenticated
listen: 127.0.0.1:4873
log: { type: stdout, format: pretty, level: warn }
YAML
node "$work/verdaccio/node_modules/verdaccio/bin/verdaccio" --config "$work/verdaccio/config.yaml" >/dev/null &
for _ in $(seq 300); do curl -fs http://127.0.0.1:4873/-/ping >/dev/null 2>&1 && break; sleep 0.1; done
npm_token=$(curl -fs -X PUT -H 'content-type: application/json' \
    -d '{"name":"bench","password":"benchpass-long"}' \
    http://127.0.0.1:4873/-/user/org.couchdb.user:bench |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
echo "//127.0.0.1:4873/:_authToken=$npm_token" >"$work/npmrc"
for plugin in greeter hello greeter-client; do
    mkdir -p "$work/npm/$plugin"
    description=$(tar -xzOf "$packages/$plugin.aerie" aerie.toml | sed -n 's/^description = "\(.*\)"/\1/p')
    printf '{"name": "%s", "version": "0.1.0", "description": "%s", "license": "Apache-2.0"}\n' \
        "$plugin" "$description" >"$work/npm/$plugin/package.json"
    tar -xzOf "$packages/$plugin.aerie" README.md >"$work/npm/$plugin/README.md" 2>/dev/null || true
    (cd "$work/npm/$plugin" && npm publish --registry http://127.0.0.1:4873/ \
        --userconfig "$work/npmrc" --silent >/dev/null)
done
echo "Verdaccio $verdaccio_version"
echo
node browser/first-visit.mjs "$(cat <<JSON
{"runs": 5, "pages": [
  {"name": "Aerie home", "url": "http://127.0.0.1:$port/", "shows": "examples/greeter-client"},
  {"name": "Aerie search", "url": "http://127.0.0.1:$port/search?q=greet", "shows": "examples/greeter-client"},
  {"name": "Aerie plugin page", "url": "http://127.0.0.1:$port/plugins/examples/greeter-client", "shows": "What it may do"},
  {"name": "Verdaccio home", "url": "http://127.0.0.1:4873/", "shows": "greeter-client"},
  {"name": "Verdaccio package page", "url": "http://127.0.0.1:4873/-/web/detail/greeter-client", "shows": "Greets over HTTP"}
]}
JSON
)" | python3 -c '
import json, sys
print("| first visit in Chromium | bytes | requests | shows its list after |")
print("|---|---|---|---|")
for row in json.load(sys.stdin):
    print("| {name} | {bytes:,} B | {requests} | {shown_ms} ms |".format(**row))
'

#!/usr/bin/env bash
# Measures, in one run, what the trust boundaries cost the two hot paths — a package download
# and a request to a plugin — with a build from before them and a build with them, and how the
# host compares with `wasmtime serve` on the very same components: the SDK's `hello` and a bare
# `wasi:http/proxy` hello packaged unchanged (`plugins/wasi-proxy`).
#
#   bench/trust-overhead.sh BEFORE_AERIE AFTER_AERIE WASMTIME PACKAGES_DIR [SECONDS]
#
# BEFORE_AERIE and AFTER_AERIE are release `aerie` binaries; WASMTIME is `wasmtime` 48 (the
# version the host embeds, `cargo install wasmtime-cli --version 48.0.8`); PACKAGES_DIR holds
# `hello.aerie` and `wasi-proxy.aerie` (the test suite builds them into
# target/test-plugin-builds/packages). Each figure is wrk -t2 -c64 for SECONDS (default 10)
# after a 2 s warm-up, with the server's CPU time per request (from /proc: less disturbed by
# wrk's share of the cores than requests/s); servers run one at a time on 127.0.0.1.
# The builds with limits get budgets far above what wrk sends, so every request goes through
# the checks and none is refused.
set -euo pipefail
before=$1 after=$2 wasmtime=$3 packages=$4 seconds=${5:-10}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
port=7931

# Requests/s, p99 and the server's CPU microseconds per request, of one wrk run against $@
# (the server is the last job started).
measure() {
    local pid ticks_before ticks_after out
    pid=$(jobs -p | tail -n 1)
    wrk -t2 -c64 -d2s "$@" >/dev/null
    ticks_before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    out=$(wrk -t2 -c64 -d"${seconds}s" --latency "$@")
    ticks_after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    echo "$out" | awk -v ticks=$((ticks_after - ticks_before)) -v hz="$(getconf CLK_TCK)" '
        /Requests\/sec/ {rps = $2} /^ +99%/ {p99 = $2} / requests in / {requests = $1}
        END {printf "%8.0f req/s  p99 %-8s %5.1f us CPU/req\n", rps, p99, ticks / hz * 1e6 / requests}'
}

wait_ready() {
    for _ in $(seq 200); do
        curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "the server on $port did not become ready" >&2
    exit 1
}

# A registry from $1 with hello published as examples/hello 0.1.0.
registry() {
    local binary=$1 data=$work/registry-$RANDOM
    AERIE_DATA_DIR=$data AERIE_LISTEN=127.0.0.1:$port AERIE_ADMIN_PASSWORD=benchpass \
        AERIE_LOG=warn AERIE_REQUIRE_SIGNATURE=false AERIE_READS_PER_MINUTE=1000000000 \
        AERIE_WRITES_PER_MINUTE=1000000000 AERIE_LOGINS_PER_MINUTE=1000000000 \
        "$binary" serve &
    wait_ready
    local token
    token=$(curl -fs -u admin:benchpass -H 'content-type: application/json' \
        -d '{"name":"bench","scopes":["publish"]}' "127.0.0.1:$port/api/v1/tokens" \
        | sed 's/.*"token":"\([^"]*\)".*/\1/')
    curl -fs -H "authorization: Bearer $token" -H 'content-type: application/json' \
        -d '{"name":"examples","require_signature":false}' "127.0.0.1:$port/api/v1/namespaces" >/dev/null
    curl -fs -X PUT -H "authorization: Bearer $token" -H 'content-type: application/gzip' \
        --data-binary "@$packages/hello.aerie" \
        "127.0.0.1:$port/api/v1/plugins/examples/hello/0.1.0" >/dev/null
}

# `aerie run` from $1 serving the package $2 in the local space `default`.
run_package() {
    AERIE_LOG=warn AERIE_PLUGIN_RATE_LIMIT=0 AERIE_READS_PER_MINUTE=1000000000 \
        "$1" run "$2" --listen "127.0.0.1:$port" --data-dir "$work/run-$RANDOM" >/dev/null &
    wait_ready
    # The compiled component is cached after the first request.
    sleep 1
}

stop() {
    kill %% 2>/dev/null
    wait 2>/dev/null || true
    port=$((port + 1))
}

download=/api/v1/plugins/examples/hello/0.1.0/download
echo "== package download (examples/hello, $(wc -c <"$packages/hello.aerie") bytes)"
registry "$before"
printf 'before  '; measure "http://127.0.0.1:$port$download"
stop
registry "$after"
printf 'after   '; measure "http://127.0.0.1:$port$download"
stop

# Before the plugin origin, plugins were served under /s/SPACE/ on the API's origin.
for plugin in hello wasi-proxy; do
    name=examples/$plugin
    echo "== a request to $name"
    run_package "$before" "$packages/$plugin.aerie"
    printf 'before  '; measure "http://127.0.0.1:$port/s/default/$name/bench"
    stop
    run_package "$after" "$packages/$plugin.aerie"
    printf 'after   '; measure -H "Host: default.localhost:$port" "http://127.0.0.1:$port/$name/bench"
    stop
    mkdir -p "$work/$plugin"
    tar -xzf "$packages/$plugin.aerie" -C "$work/$plugin"
    "$wasmtime" serve -O pooling-allocator=y -Scli -Sconfig --addr "127.0.0.1:$port" \
        "$work/$plugin/plugin.wasm" >/dev/null 2>&1 &
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/" >/dev/null 2>&1 && break; sleep 0.1; done
    printf 'wasmtime'; measure "http://127.0.0.1:$port/bench"
    stop
done

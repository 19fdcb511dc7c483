#!/usr/bin/env bash
# A quick throughput/latency figure for the daemon (not the full benchmark): a 1-worker nginx upstream serving
# 20 bytes, Gatehouse (release, 1 thread) in front, `wrk -t1 -c64` against each path for $DURATION seconds.
# Loopback only. Needs wrk and nginx (apt-get install wrk nginx-light).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

source scripts/build-deps.sh
swift build -c release -q --product gatehouse
bin="$(swift build -c release --show-bin-path)/gatehouse"

mkdir -p "$work/nginx"
cat > "$work/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
error_log $work/nginx/error.log warn;
pid $work/nginx/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/nginx; proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx;
    uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
    keepalive_requests 1000000;
    server { listen 127.0.0.1:39001; location / { return 200 "01234567890123456789"; } }
}
CONF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" &

"$bin" dev keygen --out "$work/keys" >/dev/null
cat > "$work/gatehouse.yaml" <<CONF
listen: "127.0.0.1:39002"
upstream: "http://127.0.0.1:39001"
admin: { listen: "127.0.0.1:39003" }
access_log: off
server: { threads: 1 }
clerk: { jwks_file: $work/keys/jwks.json }
sign_in_url: /sign-in
routes:
  - { name: public, match: ["/public(.*)"], access: public }
  - { name: app, match: ["/app(.*)"], require: { org_role: "org:member" } }
CONF
"$bin" serve --config "$work/gatehouse.yaml" 2>"$work/gatehouse.log" &
gatehouse_pid=$!
for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:39002/public && break; sleep 0.05; done
token=$("$bin" dev token --dir "$work/keys" --sub user_bench --org-id org_1 --org-role org:member --lifetime 3600)

run() {
    local name=$1; shift
    local out
    out=$(wrk -t1 -c64 -d"${DURATION}s" --latency "$@" 2>&1) || { echo "wrk failed: $out" >&2; cat "$work/gatehouse.log" >&2; exit 1; }
    local rps p50 p99
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    printf "%-34s %12s %10s %10s\n" "$name" "$rps" "$p50" "$p99"
}
printf "%-34s %12s %10s %10s\n" "path (wrk -t1 -c64, ${DURATION}s)" "requests/s" "p50" "p99"
run "upstream direct (nginx)" http://127.0.0.1:39001/public
run "gatehouse public route" http://127.0.0.1:39002/public
run "gatehouse protected, valid bearer" -H "Authorization: Bearer $token" http://127.0.0.1:39002/app
run "gatehouse denied (401)" http://127.0.0.1:39002/app
echo "gatehouse RSS after the run: $(awk '/VmRSS/ {print $2, $3}' /proc/$gatehouse_pid/status)"

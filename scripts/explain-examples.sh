#!/usr/bin/env bash
# Shows the decision engine without a listener: validates the example config, then asks `explain` about
# a few requests with tokens from a local DEVELOPMENT key (generated here, kept in
# .build/demo-keys, never used unless named by GATEHOUSE_JWKS_FILE).
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/build-deps.sh
swift build -q --product gatehouse
bin="$(swift build --show-bin-path)/gatehouse"
keys=.build/demo-keys
[ -f "$keys/jwks.json" ] || "$bin" dev keygen --out "$keys" >/dev/null
export GATEHOUSE_JWKS_FILE="$PWD/$keys/jwks.json"
config=config/gatehouse.example.yaml

"$bin" check-config --config "$config"
iss=https://clerk.example.com
azp=http://127.0.0.1:8080
admin=$("$bin" dev token --dir "$keys" --sub user_admin --iss "$iss" --azp "$azp" --claim 'metadata={"role":"admin"}')
member=$("$bin" dev token --dir "$keys" --sub user_member --iss "$iss" --azp "$azp" \
    --org-id org_acme --org-slug acme --org-role org:member)

show() {
    local title="$1"; shift
    echo
    echo "== $title"
    if [ ! -x /usr/bin/python3 ]; then "$bin" explain --config "$config" "$@"; return; fi
    "$bin" explain --config "$config" "$@" | /usr/bin/python3 -c '
import json, sys
r = json.load(sys.stdin)
d = r["decision"]
line = "%s %s" % (d["action"], d["status"])
if d.get("location"): line += " -> " + d["location"]
print(line)
print("   route:", (r["route"] or {}).get("name"), "| auth:", (r["auth"] or {}).get("status"), (r["auth"] or {}).get("reason") or "")
print("   why:  ", d["explanation"])
'
}
show "anonymous browser opens /dashboard"      -H 'Accept: text/html' -H 'Sec-Fetch-Dest: document' /dashboard
show "anonymous API call to /api/protected"    -H 'Accept: application/json' /api/protected/items
show "admin opens /admin"                       -H "Authorization: Bearer $admin" /admin
show "member opens /admin"                      -H "Authorization: Bearer $member" /admin
show "member opens /dashboard (cookie session)" -H "Cookie: __session=$member; __client_uat=1" /dashboard
show "member probes /internal (hidden route)"   -H "Authorization: Bearer $member" /internal/reports
show "path trick /api/public/../../admin"       -H "Authorization: Bearer $member" '/api/public/%2e%2e/%2e%2e/admin'
show "encoded slash /admin%2Fusers"             /admin%2Fusers
# Browser sessions (Clerk's handshake): the same cookie an hour later, as a page load and as an API call.
later=$(( $(date +%s) + 3600 ))
show "returning browser, expired session cookie" --at "$later" -H 'Sec-Fetch-Dest: document' -H "Cookie: __session=$member; __client_uat=1" /dashboard
show "same cookie, API call (no handshake)"     --at "$later" -H 'Accept: application/json' -H "Cookie: __session=$member; __client_uat=1" /api/protected/items
show "active client, session cookie missing"    -H 'Sec-Fetch-Dest: document' -H 'Cookie: __client_uat=1' /dashboard
show "cross-site POST with a cookie session"    --method POST -H 'Origin: https://evil.example' -H "Cookie: __session=$member; __client_uat=1" /dashboard
echo
echo "Full JSON for any request: $bin explain --config $config -H 'Authorization: Bearer <token>' /path"

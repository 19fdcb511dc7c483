#!/usr/bin/env bash
# Security review of machine auth (issue 12): `gatehouse explain` runs that show three findings without any
# network (M2M JWTs and sessions are verified locally). Usage: review/machine-auth-explain.sh [path/to/gatehouse]
set -euo pipefail
B="${1:-$(cd "$(dirname "$0")/.." && pwd)/.build/debug/gatehouse}"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$B" dev keygen --out "$dir/keys" >/dev/null
cat > "$dir/cfg.yaml" <<YAML
upstream: http://127.0.0.1:3000
clerk:
  publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k
  secret_key: sk_live_review
  machine_secret_key: ak_machineC_secret
  jwks_file: $dir/keys/jwks.json
sign_in_url: /sign-in
routes:
  - name: m2m
    match: ["/api/m2m(.*)"]
    accepts: m2m_token
  - name: default
    match: ["/legacy(.*)"]
    accepts: m2m_token
  - name: mcp
    match: ["/mcp(.*)"]
    accepts: [session_token, oauth_token]
default: protected
YAML
# An M2M JWT machine A minted for machine B (aud/scopes mch_machineB), shown to machine C's gateway.
T=$("$B" dev token --dir "$dir/keys" --sub mch_machineA --claim 'aud=["mch_machineB"]' --claim 'scopes="mch_machineB"' --lifetime 300)
show() { "$B" explain --config "$dir/cfg.yaml" "$@" | /usr/bin/python3 -c '
import json, sys
r = json.load(sys.stdin); d = r["decision"]
print("  ->", (r["route"] or {}).get("name"), d["action"], d["status"], "|", d["explanation"])
for h in d.get("responseHeaders") or d.get("headers") or []:
    if h[0].lower() == "www-authenticate": print("     WWW-Authenticate:", h[1])'; }
echo "1. M2M JWT not scoped to this machine, though clerk.machine_secret_key is set (expected: refused)"
show -H "Authorization: Bearer $T" /api/m2m/x
echo "2. The same token on a path no rule matches: the fallback borrows accepts: of the route named 'default' (expected: 401)"
show -H "Authorization: Bearer $T" /unlisted/admin
echo "3. MCP discovery on a route taking session and OAuth tokens (expected: resource_metadata challenge)"
show -H 'Accept: application/json' /mcp

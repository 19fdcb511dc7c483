#!/usr/bin/python3
"""Verifies Gatehouse identity assertions with PyJWT, as an app would: keys fetched from a JWKS URL by
PyJWKClient (a real HTTP request), ES256 only, audience and issuer checked, exp/iat required.

stdin: {"jwks_url": "...", "issuer": "...", "checks": [{"token": "...", "audience": "..."}, ...]}
stdout: {"pyjwt": "<version> <path>", "results": [{"claims": {...}, "kid": "..."} | {"error": "<ExceptionName>"}]}
"""
import json
import sys

import jwt

request = json.load(sys.stdin)
client = jwt.PyJWKClient(request["jwks_url"], cache_keys=False, cache_jwk_set=False)
results = []
for check in request["checks"]:
    try:
        key = client.get_signing_key_from_jwt(check["token"])
        claims = jwt.decode(
            check["token"], key.key, algorithms=["ES256"], audience=check["audience"], issuer=request["issuer"],
            options={"require": ["exp", "iat", "aud", "iss"]},
        )
        results.append({"claims": claims, "kid": jwt.get_unverified_header(check["token"])["kid"]})
    except Exception as error:  # the test compares the exception name
        results.append({"error": type(error).__name__})
print(json.dumps({"pyjwt": jwt.__version__ + " " + jwt.__file__, "results": results}))

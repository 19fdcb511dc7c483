#!/usr/bin/python3
"""Third-party JWT vectors for Gatehouse's verifier, made by PyJWT + cryptography (Debian python3-jwt,
python3-cryptography) so that no byte of them comes from Gatehouse's own Base64URL, JSON or signing code.

Usage: jwt-vectors.py NOW   (Unix seconds; tokens are issued at NOW and live 60 s)
Prints one JSON object: {"jwks": {...}, "tokens": {name: token}}. Fresh keys every run; nothing is written.
Run by Tests/GatehouseTests/JWTVectorTests.swift with /usr/bin/python3.
"""
import base64
import json
import sys

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

now = int(sys.argv[1])
claims = {
    "sub": "user_pyjwt", "sid": "sess_pyjwt", "iss": "https://clerk.example.com", "azp": "https://app.example.com",
    "iat": now, "nbf": now - 10, "exp": now + 60,
}

keys = {
    "RS256": (rsa.generate_private_key(public_exponent=65537, key_size=2048), RSAAlgorithm),
    "ES256": (ec.generate_private_key(ec.SECP256R1()), ECAlgorithm),
    "ES384": (ec.generate_private_key(ec.SECP384R1()), ECAlgorithm),
    "EdDSA": (ed25519.Ed25519PrivateKey.generate(), OKPAlgorithm),
}


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


jwks = []
tokens = {}
for alg, (private, algorithm) in keys.items():
    kid = "pyjwt-" + alg.lower()
    jwk = json.loads(algorithm.to_jwk(private.public_key()))
    jwk.update({"kid": kid, "alg": alg, "use": "sig"})
    jwks.append(jwk)
    token = jwt.encode(claims, private, algorithm=alg, headers={"kid": kid})
    tokens[alg] = token
    header, payload, signature = token.split(".")
    # Payload changed after signing: another user, same signature.
    forged = dict(claims, sub="user_admin")
    tokens[alg + "-payload-swapped"] = ".".join([header, b64(json.dumps(forged).encode()), signature])
    # One bit of the signature flipped.
    raw = bytearray(unb64(signature))
    raw[len(raw) // 2] ^= 0x01
    tokens[alg + "-signature-flipped"] = ".".join([header, payload, b64(bytes(raw))])
    # Expired: issued two minutes ago, valid signature.
    old = dict(claims, iat=now - 120, nbf=now - 130, exp=now - 60)
    tokens[alg + "-expired"] = jwt.encode(old, private, algorithm=alg, headers={"kid": kid})

# ES256 signature relabelled as ES384 under the ES384 key's kid: a valid signature for the wrong key/alg.
es256 = tokens["ES256"].split(".")
relabelled = json.loads(unb64(es256[0]))
relabelled.update({"alg": "ES384", "kid": "pyjwt-es384"})
tokens["ES256-as-ES384"] = ".".join([b64(json.dumps(relabelled).encode()), es256[1], es256[2]])
# A token signed with a key that is not in the JWKS, under a listed kid.
stranger = ec.generate_private_key(ec.SECP256R1())
tokens["ES256-foreign-key"] = jwt.encode(claims, stranger, algorithm="ES256", headers={"kid": "pyjwt-es256"})

print(json.dumps({"jwks": {"keys": jwks}, "tokens": tokens}))

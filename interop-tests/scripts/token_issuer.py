#!/usr/bin/python3
"""A Docker registry token issuer for the tests, on PyJWT (python3-jwt) and cryptography.

It works as Docker Hub's and GHCR's do (the distribution "token authentication" spec): a
registry configured with `auth: token` answers 401 with a Bearer challenge naming this realm;
the client asks GET /token?service=..&scope=repository:NAME:ACTIONS (Basic credentials
optional) and gets an RS256 JWT whose `access` claim lists what it may do, signed by a key
whose self-signed certificate (in the `x5c` header) the registry trusts (rootcertbundle).

Who may do what: anonymous clients pull `public/*`; `reader:readerpw` also pulls `private/*`;
`admin:adminpw` pulls and pushes everything. Wrong credentials are a 401. Tokens live TTL
seconds. Every token request is appended to LOG (one line: user, scope).

usage: token_issuer.py CERT_OUT LOG TTL   (prints "ready PORT" once it listens on 127.0.0.1)
"""
import base64
import datetime
import http.server
import json
import sys
import time
import urllib.parse
import uuid

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

ISSUER, SERVICE = "shoal-test-issuer", "shoal-test-registry"
USERS = {"reader": "readerpw", "admin": "adminpw"}

cert_out, log_path, ttl = sys.argv[1], sys.argv[2], int(sys.argv[3])
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
now = datetime.datetime.now(datetime.timezone.utc)
cert = (
    x509.CertificateBuilder()
    .subject_name(name)
    .issuer_name(name)
    .public_key(key.public_key())
    .serial_number(x509.random_serial_number())
    .not_valid_before(now - datetime.timedelta(days=1))
    .not_valid_after(now + datetime.timedelta(days=1))
    .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    .sign(key, hashes.SHA256())
)
with open(cert_out, "wb") as f:
    f.write(cert.public_bytes(serialization.Encoding.PEM))
x5c = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]
signing_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def allowed(user, repository, actions):
    if user == "admin":
        return actions
    if repository.startswith("public/") or (user == "reader" and repository.startswith("private/")):
        return [a for a in actions if a == "pull"]
    return []


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def deny(self):
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="shoal-test-issuer"')
        self.send_header("Content-Type", "application/json")
        body = json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "wrong username or password"}]}).encode()
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        if url.path != "/token":
            self.send_response(404)
            self.end_headers()
            return
        user = None
        header = self.headers.get("Authorization", "")
        if header.startswith("Basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            if USERS.get(user) != password:
                return self.deny()
        query = urllib.parse.parse_qs(url.query)
        access = []
        for scope in query.get("scope", []):
            parts = scope.split(":")
            if len(parts) >= 3 and parts[0] == "repository":
                repository, actions = ":".join(parts[1:-1]), parts[-1].split(",")
                access.append({"type": "repository", "name": repository, "actions": allowed(user, repository, actions)})
        with open(log_path, "a") as log:
            log.write(f"{user or '-'} {' '.join(query.get('scope', []))}\n")
        issued = int(time.time())
        claims = {
            "iss": ISSUER, "sub": user or "", "aud": query.get("service", [SERVICE])[0], "exp": issued + ttl,
            "nbf": issued - 10, "iat": issued, "jti": uuid.uuid4().hex, "access": access,
        }
        token = jwt.encode(claims, signing_key, algorithm="RS256", headers={"x5c": x5c})
        body = json.dumps({"token": token, "access_token": token, "expires_in": ttl,
                           "issued_at": datetime.datetime.fromtimestamp(issued, datetime.timezone.utc).isoformat()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"ready {server.server_address[1]}", flush=True)
server.serve_forever()

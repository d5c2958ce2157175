#!/usr/bin/env bash
# Makes the secrets deploy/compose.yaml reads, once, never overwriting one that exists:
#   deploy/secrets/discovery-token       the registry's shared secret (32 hex digits)
#   deploy/secrets/jwt-private-key.pem   the review service's Ed25519 signing key (PKCS#8)
#   deploy/secrets/postgres-password     PostgreSQL's password for the `liner` user
#   deploy/.env                          LINER_PG_PASSWORD for the services' DATABASE_URL
#                                        (Liner reads a database URL from its environment)
# Git ignores all of them. The directory is private to you (0700); the files in it are
# readable by the containers' non-root users (0644), as compose mounts them as they are.
# For Kubernetes, put the same values in the `liner-secrets` Secret (deploy/README.md).
set -euo pipefail
cd "$(dirname "$0")"
umask 022
mkdir -p secrets
chmod 700 secrets

random_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }

make() { # file, command that prints the content
  local file=$1; shift
  if [[ -s $file ]]; then echo "kept    deploy/$file"; return; fi
  "$@" >"$file.tmp"
  chmod 644 "$file.tmp"
  mv "$file.tmp" "$file"
  echo "created deploy/$file"
}

make secrets/discovery-token random_hex 16
make secrets/postgres-password random_hex 24
if command -v openssl >/dev/null; then
  make secrets/jwt-private-key.pem openssl genpkey -algorithm ed25519
else
  echo "openssl is missing: put an Ed25519 PKCS#8 PEM key in deploy/secrets/jwt-private-key.pem" >&2
  exit 1
fi
if [[ ! -s .env ]]; then
  printf 'LINER_PG_PASSWORD=%s\n' "$(cat secrets/postgres-password)" >.env
  chmod 600 .env
  echo "created deploy/.env"
fi

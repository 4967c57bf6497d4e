#!/usr/bin/env bash
# credentials-up.sh - install the Debian packages the credential tests use, if missing:
# grid proxy tools (globus-proxy-utils, voms-clients) and MIT Kerberos (krb5-kdc,
# krb5-admin-server, krb5-user). Idempotent and quiet when everything is there.
# Needs root for apt-get; other callers get a clear error naming what is missing.
# apt-install.sh keeps the packages' init scripts from starting a system-wide KDC.
set -euo pipefail

exec "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" \
    globus-proxy-utils voms-clients openssl krb5-kdc krb5-admin-server krb5-user

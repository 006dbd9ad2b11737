#!/usr/bin/env bash
# Installs tinykube the same way `make up` does (apt packages, .venv), from the synced checkout.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends make rsync git >/dev/null
install -d /opt/tinykube
rsync -a --delete --exclude .venv --exclude .make --exclude .git /vagrant/ /opt/tinykube/
make -C /opt/tinykube deps
ln -sf /opt/tinykube/.venv/bin/tinykube /usr/local/bin/tinykube

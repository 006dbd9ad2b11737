#!/usr/bin/env bash
# Writes and starts a systemd unit running one tinykube daemon: unit.sh NAME ARGS...
set -euo pipefail
name=$1; shift
cat >"/etc/systemd/system/tinykube-$name.service" <<UNIT
[Unit]
Description=tinykube $name
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=/usr/local/bin/tinykube $*
Restart=always
RestartSec=2
KillMode=process
Delegate=yes

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable --now "tinykube-$name.service"

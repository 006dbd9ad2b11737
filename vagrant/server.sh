#!/usr/bin/env bash
# Control-plane VM: API server (+ scheduler, controllers), and a node of its own.
# Publishes the admin kubeconfig and a join token under /vagrant/.vagrant/tinykube for the workers
# and the host. Usage: server.sh SERVER_IP POD_CIDR PROXY_MODE
set -euo pipefail
server_ip=$1 pod_cidr=$2 mode=$3
here=$(dirname "$0")
out=/vagrant/.vagrant/tinykube
install -d "$out"
bash "$here/unit.sh" server server --listen "$server_ip:6443" --advertise-address "$server_ip" \
    --kubeconfig-out /etc/tinykube/admin.kubeconfig
for _ in $(seq 60); do
    [ -s /etc/tinykube/admin.kubeconfig ] && break
    sleep 1
done
tinykube server token create >"$out/join-token"
cp /etc/tinykube/admin.kubeconfig "$out/admin.kubeconfig"
bash "$here/node.sh" "https://$server_ip:6443" "$(cat "$out/join-token")" "$server_ip" "$pod_cidr" "$mode"

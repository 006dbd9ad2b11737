#!/usr/bin/env bash
# Worker VM: joins the control plane with the token it published. Usage: worker.sh SERVER_IP NODE_IP POD_CIDR MODE
set -euo pipefail
server_ip=$1 node_ip=$2 pod_cidr=$3 mode=$4
token=$(cat /vagrant/.vagrant/tinykube/join-token)
bash "$(dirname "$0")/node.sh" "https://$server_ip:6443" "$token" "$node_ip" "$pod_cidr" "$mode"

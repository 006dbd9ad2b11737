#!/usr/bin/env bash
# One node: join with a token (writes /etc/tinykube/node.kubeconfig), then cri, node agent and proxy
# as systemd units. Shared by the control-plane VM, the workers and the netns lab's node join.
# Usage: node.sh SERVER_URL TOKEN NODE_IP POD_CIDR PROXY_MODE
set -euo pipefail
server=$1 token=$2 node_ip=$3 pod_cidr=$4 mode=$5
here=$(dirname "$0")
name=$(hostname)
tinykube node join --server "$server" --token "$token" --node-name "$name" \
    --kubeconfig-out /etc/tinykube/node.kubeconfig
bash "$here/unit.sh" cri cri
bash "$here/unit.sh" node node --kubeconfig /etc/tinykube/node.kubeconfig --node-name "$name" \
    --node-ip "$node_ip" --pod-cidr "$pod_cidr"
bash "$here/unit.sh" proxy proxy --kubeconfig /etc/tinykube/node.kubeconfig --node-name "$name" \
    --node-ip "$node_ip" --mode "$mode"

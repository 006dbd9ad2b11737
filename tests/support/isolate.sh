#!/usr/bin/env bash
# Runs inside `unshare --net --mount --pid --fork --mount-proc`: makes the mount namespace private,
# gives this network namespace its own sysfs view, puts tmpfs over every state directory tinykube or
# a CNI plugin writes, then runs pytest. Everything here dies with the namespaces.
set -eu
py=$1; shift
mount --make-rprivate /
ip link set lo up
# A sysfs mounted in this netns shows only this netns's links; keep the host's cgroup hierarchies.
cg=$(mktemp -d)
mount --rbind /sys/fs/cgroup "$cg"
mount -t sysfs sysfs /sys
mount --move "$cg" /sys/fs/cgroup
rmdir "$cg"
for d in /run/netns /run/tinykube /var/lib/tinykube /etc/tinykube /var/lib/cni /etc/cni/net.d /opt/cni/bin /var/log/pods; do
    mkdir -p "$d"
    mount -t tmpfs -o mode=0755 tinykube-test "$d"
done
export TINYKUBE_ISOLATED=1
set +e
"$py" -m pytest "$@"
exit $?

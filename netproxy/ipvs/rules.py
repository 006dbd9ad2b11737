"""The few iptables rules IPVS mode still needs (kube-proxy's IPVS layout): masquerade marks chosen by
ipset membership, so their number does not grow with the number of services. Pure.

nat:    PREROUTING/OUTPUT → KUBE-SERVICES ─ ClusterIP from outside the pod network → KUBE-MARK-MASQ
                                          ─ externalIP / LB IP → KUBE-MARK-MASQ
                                          ─ local address → KUBE-NODE-PORT (NodePorts; Local policy: no mark)
                                          ─ ClusterIP → ACCEPT (IPVS does the DNAT)
        POSTROUTING → KUBE-POSTROUTING: hairpin (KUBE-LOOP-BACK) and marked traffic MASQUERADE
filter: FORWARD → KUBE-FORWARD: accept marked and established traffic
"""

from __future__ import annotations

from netproxy.config import MASQ_MARK, ProxyConfig
from netproxy.ipset import LOOP_BACK
from netproxy.iptables.render import COMMENT, JumpRule
from netproxy.ipvs.ipsets import CLUSTER_IP, EXTERNAL_IP, NODE_PORT, NODE_PORT_LOCAL

NAT_CHAINS = ("KUBE-SERVICES", "KUBE-NODE-PORT", "KUBE-POSTROUTING", "KUBE-MARK-MASQ")
FILTER_CHAINS = ("KUBE-FORWARD",)
JUMP_RULES = (
    JumpRule("nat", "PREROUTING", ("-m", "comment", "--comment", COMMENT, "-j", "KUBE-SERVICES")),
    JumpRule("nat", "OUTPUT", ("-m", "comment", "--comment", COMMENT, "-j", "KUBE-SERVICES")),
    JumpRule("nat", "POSTROUTING", ("-m", "comment", "--comment", COMMENT, "-j", "KUBE-POSTROUTING")),
    JumpRule("filter", "FORWARD", ("-j", "KUBE-FORWARD")),
)


def render(config: ProxyConfig) -> str:
    """The whole `iptables-restore --noflush` text: it depends on the configuration only, never on the
    services, so it is applied at start-up and on full syncs, not per change."""
    mark = f"{MASQ_MARK:#x}/{MASQ_MARK:#x}"
    nat = ["*nat", *(f":{c} - [0:0]" for c in NAT_CHAINS)]
    if config.masquerade_all:
        nat.append(f"-A KUBE-SERVICES -m set --match-set {CLUSTER_IP} dst,dst -j KUBE-MARK-MASQ")
    elif config.cluster_cidr:
        nat.append(
            f"-A KUBE-SERVICES ! -s {config.cluster_cidr} -m set --match-set {CLUSTER_IP} dst,dst -j KUBE-MARK-MASQ"
        )
    nat.append(f"-A KUBE-SERVICES -m set --match-set {EXTERNAL_IP} dst,dst -j KUBE-MARK-MASQ")
    nat.append("-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT")
    nat.append(f"-A KUBE-SERVICES -m set --match-set {CLUSTER_IP} dst,dst -j ACCEPT")
    for proto, name in NODE_PORT.items():
        p = proto.lower()
        nat.append(f"-A KUBE-NODE-PORT -p {p} -m set --match-set {NODE_PORT_LOCAL[proto]} dst -j RETURN")
        nat.append(f"-A KUBE-NODE-PORT -p {p} -m set --match-set {name} dst -j KUBE-MARK-MASQ")
    nat += [
        f"-A KUBE-POSTROUTING -m set --match-set {LOOP_BACK.name} dst,dst,src -j MASQUERADE",
        f"-A KUBE-POSTROUTING -m mark ! --mark {mark} -j RETURN",
        f"-A KUBE-POSTROUTING -j MARK --xor-mark {MASQ_MARK:#x}",
        f'-A KUBE-POSTROUTING -m comment --comment "{COMMENT}" -j MASQUERADE --random-fully',
        f"-A KUBE-MARK-MASQ -j MARK --or-mark {MASQ_MARK:#x}",
        "COMMIT",
    ]
    filt = [
        "*filter",
        *(f":{c} - [0:0]" for c in FILTER_CHAINS),
        f"-A KUBE-FORWARD -m mark --mark {mark} -j ACCEPT",
        "-A KUBE-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "COMMIT",
    ]
    return "\n".join(filt + nat) + "\n"

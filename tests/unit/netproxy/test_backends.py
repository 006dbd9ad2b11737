from __future__ import annotations

from netproxy.iptables.backend import missing_jumps, saved_chains, written_chains
from netproxy.iptables.kernel import choose_backend
from netproxy.iptables.render import JUMP_RULES
from netproxy.nftables.backend import NftablesBackend
from netproxy.proxier import Proxier
from netproxy.testing import FakeConntrack, FakeEvents, FakeIptables, FakeNft
from netproxy.testing.objects import endpoint_slice, service
from tests.unit.netproxy.scenario import CFG

V_NFT = "iptables v1.8.9 (nf_tables)"
V_LEGACY = "iptables v1.8.9 (legacy)"


def test_backend_with_rules_wins_else_the_one_iptables_names() -> None:
    assert choose_backend(V_NFT, legacy_rules=3, nft_rules=0) == "legacy"
    assert choose_backend(V_LEGACY, legacy_rules=0, nft_rules=2) == "nft"
    assert choose_backend(V_NFT, legacy_rules=0, nft_rules=0) == "nft"
    assert choose_backend(V_LEGACY, legacy_rules=1, nft_rules=1) == "legacy"


def test_startup_listing_finds_our_chains_and_missing_jumps() -> None:
    fake = FakeIptables()
    fake.tables["nat"]["KUBE-SVC-OLD"] = []
    fake.tables["nat"]["DOCKER"] = []
    fake.ensure_jumps([r for r in JUMP_RULES if r.table == "nat"])
    saved = {t: fake.save(t) for t in ("nat", "filter")}
    assert saved_chains(saved["nat"]) == {"KUBE-SVC-OLD"}
    assert missing_jumps(saved) == [r for r in JUMP_RULES if r.table == "filter"]


def test_written_chains_follow_declarations_and_deletions() -> None:
    text = (
        "*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SEP-A - [0:0]\n:KUBE-SEP-B - [0:0]\n-X KUBE-SEP-B\n-X KUBE-SEP-C\nCOMMIT\n"
    )
    assert written_chains(text, {"KUBE-SEP-C", "KUBE-SVC-X"}) == {"KUBE-SEP-A", "KUBE-SVC-X"}


def test_nftables_backend_skips_empty_transactions_and_isolates_refused_services() -> None:
    nft = FakeNft()
    p = Proxier(NftablesBackend(nft, CFG), CFG, conntrack=FakeConntrack(), events=FakeEvents())
    p.on_service(service("web", "10.96.0.10"))
    p.on_slice(endpoint_slice("web", ["10.1.0.1"]))
    p.sync_once()
    assert len(nft.applied) == 1
    assert nft.applied[0].startswith("add table ip tinykube\ndelete table ip tinykube\n")
    p.on_service(service("web", "10.96.0.10"))  # no change
    p.sync_once()
    assert len(nft.applied) == 1
    nft.refuse = "10.96.0.66"
    p.on_service(service("bad", "10.96.0.66"))
    p.on_slice(endpoint_slice("bad", ["10.1.0.6"]))
    p.on_service(service("good", "10.96.0.77"))
    p.on_slice(endpoint_slice("good", ["10.1.0.7"]))
    result = p.sync_once()
    assert result.rejected == {"default/bad"}
    assert "10.96.0.77 . tcp . 80" in nft.applied[-1]
    assert not p.need_full_sync

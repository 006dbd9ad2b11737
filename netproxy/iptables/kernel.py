"""The iptables tools, run as processes: the thin, root-only part of the iptables backend.

python-iptables is not used. Measured here: `import iptc` costs ~1.1 s and it drives only the legacy
backend (this host's iptables is nf_tables); bulk loads through it are ~20-80x slower than
`iptables-restore` (ENVIRONMENT.md: 2,000 DNAT rules 0.86 s vs 0.01-0.04 s). Its one strength, a
0.07 ms single-rule check against ~10 ms for `iptables -C`, does not pay for the import: our jump
rules are checked from the start-up `iptables-save` listing, and with `iptables -C` (~10 calls) only on
periodic full syncs, never on a partial sync.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Sequence

from netproxy.errors import ApplyError
from netproxy.iptables.render import JumpRule

# A full sync at 10k services takes ~1.5 s with the legacy backend; with the nft backend
# `iptables-nft-restore --noflush` costs O(chains x rules) in user space (bench/proxy_sync.py): ~3 s at
# 1k services x 10 endpoints, ~23 s at 2k with one chain per endpoint, ~13 s at 10k without. Past this,
# the tool is treated as hung.
TIMEOUT = 600.0


def choose_backend(version_output: str, *, legacy_rules: int, nft_rules: int) -> str:
    """`legacy` or `nft`: the backend that already holds rules wins (another program, e.g. a container
    runtime, programs the host through it and both must meet in one table); with rules in both or
    neither, the one `iptables -V` names."""
    if legacy_rules and not nft_rules:
        return "legacy"
    if nft_rules and not legacy_rules:
        return "nft"
    return "nft" if "nf_tables" in version_output else "legacy"


def _run(argv: Sequence[str], *, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a tool; a hang or a missing binary is reported like a refusal (the kernel keeps its rules)."""
    try:
        return subprocess.run(list(argv), input=stdin, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired as err:
        raise ApplyError(argv[0], -1, f"no answer after {TIMEOUT:.0f} s") from err
    except OSError as err:
        raise ApplyError(argv[0], -1, str(err)) from err


def _count_rules(prefix: Sequence[str], tool: str) -> int:
    out = _run([*prefix, tool, "-w", "5", "-t", "nat", "-S", "POSTROUTING"]).stdout
    return sum(1 for line in out.splitlines() if line.startswith("-A "))


def detect_backend(prefix: Sequence[str] = ()) -> str:
    version = _run([*prefix, "iptables", "-V"]).stdout
    return choose_backend(
        version,
        legacy_rules=_count_rules(prefix, "iptables-legacy"),
        nft_rules=_count_rules(prefix, "iptables-nft"),
    )


class IptablesTools:
    """iptables(-legacy|-nft) and its -restore/-save for one backend. `prefix` runs them elsewhere,
    e.g. `ip netns exec NODE` for a node that is a network namespace (labs, tests)."""

    def __init__(self, backend: str, prefix: Sequence[str] = ()) -> None:
        self.backend = backend
        self._iptables = f"iptables-{backend}"
        self._prefix = list(prefix)

    def restore(self, chunks: str | Iterable[str]) -> None:
        """One transaction per table (iptables-nft-restore: one for the whole text); on error nothing
        of the failed transaction reaches the kernel. Chunks are written as they come, so the tool
        parses while the caller is still rendering the rest (a full sync's render is ~1 s at 10k)."""
        tool = f"{self._iptables}-restore"
        argv = [*self._prefix, tool, "--noflush", "-w", "5"]
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
            )
        except OSError as err:
            raise ApplyError(tool, -1, str(err)) from err
        assert proc.stdin is not None
        try:
            for chunk in [chunks] if isinstance(chunks, str) else chunks:
                proc.stdin.write(chunk)
        except BrokenPipeError:
            pass  # the tool stopped reading: its exit status and stderr say why
        except BaseException:
            # The caller's chunks failed half way: end the tool before it sees COMMIT, so nothing applies.
            proc.kill()
            proc.communicate()
            raise
        try:
            _, stderr = proc.communicate(timeout=TIMEOUT)  # flushes and closes stdin
        except subprocess.TimeoutExpired as err:
            proc.kill()
            proc.communicate()
            raise ApplyError(tool, -1, f"no answer after {TIMEOUT:.0f} s") from err
        if proc.returncode != 0:
            raise ApplyError(tool, proc.returncode, stderr)

    def ensure_jumps(self, rules: Sequence[JumpRule]) -> None:
        """Insert each missing jump rule at the top of its built-in chain; rules others own stay as they are."""
        for rule in reversed(rules):  # inserting in reverse keeps the listed order at the top
            base = [*self._prefix, self._iptables, "-w", "5", "-t", rule.table]
            if _run([*base, "-C", rule.chain, *rule.args]).returncode == 0:
                continue
            res = _run([*base, "-I", rule.chain, "1", *rule.args])
            if res.returncode != 0:
                raise ApplyError(self._iptables, res.returncode, res.stderr)

    def save(self, table: str) -> str:
        """`iptables-save` of one table (start-up only: listing is slow with 10k services)."""
        return _run([*self._prefix, f"{self._iptables}-save", "-t", table]).stdout

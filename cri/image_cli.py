"""`tinykube image`: manage the local image store the CRI runtime runs containers from.

tinykube image [--root DIR] import FILE [--name REF]   OCI layout or docker-save tarball
tinykube image [--root DIR] pull REF [--username U]    from a registry (password from $TINYKUBE_REGISTRY_PASSWORD)
tinykube image [--root DIR] push SRC DEST              a local image to a registry reference
tinykube image [--root DIR] ls [-q]
tinykube image [--root DIR] rm REF...
tinykube image [--root DIR] builtin                    build busybox and pause locally (no network)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

from cri.images import DEFAULT_ROOT, Image, ImageError, ImageStore, RegistryAuth, parse_reference
from cri.images.registry import push

PASSWORD_ENV = "TINYKUBE_REGISTRY_PASSWORD"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tinykube image", description="Manage the local image store.")
    p.add_argument("--root", default=DEFAULT_ROOT, help=f"image store directory (default {DEFAULT_ROOT})")
    p.add_argument(
        "--insecure-registry",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="talk plain HTTP to this registry (loopback registries always are)",
    )
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    imp = sub.add_parser("import", help="import an OCI-layout or docker-save tarball")
    imp.add_argument("file")
    imp.add_argument("--name", help="reference for an image the archive does not name")
    pull = sub.add_parser("pull", help="pull an image from a registry")
    pull.add_argument("ref")
    pull.add_argument("--username", default="", help=f"registry user; the password is read from ${PASSWORD_ENV}")
    pu = sub.add_parser("push", help="push a local image to a registry")
    pu.add_argument("src")
    pu.add_argument("dest")
    pu.add_argument("--username", default="", help=f"registry user; the password is read from ${PASSWORD_ENV}")
    ls = sub.add_parser("ls", help="list images")
    ls.add_argument("-q", "--quiet", action="store_true", help="only image ids")
    rm = sub.add_parser("rm", help="remove images (with all their names) and unused layers")
    rm.add_argument("refs", nargs="+")
    sub.add_parser("builtin", help="build the busybox and pause images from this machine (no network)")
    return p


def _auth(username: str) -> RegistryAuth | None:
    return RegistryAuth(username=username, password=os.environ.get(PASSWORD_ENV, "")) if username else None


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1000
    raise AssertionError("unreachable")


def _rows(images: list[Image]) -> list[tuple[str, str, str, str]]:
    rows = []
    for image in images:
        short = image.id.removeprefix("sha256:")[:12]
        names = [(r.name, r.tag) for r in map(parse_reference, image.repo_tags)]
        if not names:  # pulled or imported by digest only
            names = [(d.partition("@")[0], "<none>") for d in image.repo_digests[:1]] or [("<none>", "<none>")]
        rows += [(repo, tag, short, _human(image.size)) for repo, tag in names]
    return rows


def _print_table(images: list[Image]) -> None:
    rows = [("IMAGE", "TAG", "IMAGE ID", "SIZE"), *_rows(images)]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}")


def _run(args: argparse.Namespace) -> int:
    store = ImageStore(args.root, insecure_registries=args.insecure_registry)
    started = time.monotonic()
    if args.cmd == "import":
        for image in store.import_archive(args.file, name=args.name):
            print(f"imported {', '.join(image.repo_tags) or image.id} ({image.id})")
    elif args.cmd == "pull":
        image = store.pull(args.ref, auth=_auth(args.username))
        print(f"pulled {parse_reference(args.ref)} ({image.id}) in {time.monotonic() - started:.2f}s")
    elif args.cmd == "push":
        digest = push(store, args.src, args.dest, auth=_auth(args.username))
        print(f"pushed {parse_reference(args.dest)} ({digest})")
    elif args.cmd == "ls":
        images = store.list()
        if args.quiet:
            for image in images:
                print(image.id)
        else:
            _print_table(images)
    elif args.cmd == "rm":
        missing = [ref for ref in args.refs if not store.remove(ref)]
        for ref in missing:
            print(f"tinykube image: no image {ref!r}", file=sys.stderr)
        return 1 if missing else 0
    elif args.cmd == "builtin":
        for image in store.ensure_builtin():
            print(f"{', '.join(image.repo_tags)} ({image.id})")
    return 0


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    try:
        return _run(args)
    except ImageError as err:
        print(f"tinykube image: {err}", file=sys.stderr)
        return 1

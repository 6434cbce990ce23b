"""`edgeai knowledge add|list|search|remove`: manage the device-manual store of a data home."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgeai.cli import add_common, add_store, require_home
from edgeai.config import Settings
from rich.console import Console
from rich.table import Table


def register(sub: argparse._SubParsersAction) -> None:
    knowledge = sub.add_parser("knowledge", help="device manuals: add, list, search, remove")
    ksub = knowledge.add_subparsers(
        dest="knowledge_command", required=True, parser_class=type(knowledge)
    )

    add = ksub.add_parser(
        "add", help="add manuals (files or folders of *.md); re-adding replaces a device"
    )
    add.add_argument("paths", nargs="+", type=Path, metavar="FILE_OR_DIR")
    add.add_argument(
        "--no-prepare",
        action="store_true",
        help="do not plan once after the add (scripts adding many batches: the first plan pays)",
    )
    add_common(add)
    add_store(add)
    add.set_defaults(func=cmd_add)

    lst = ksub.add_parser("list", help="devices and the models they host")
    lst.add_argument(
        "--json", action="store_true", help="print the front matter of every device as JSON"
    )
    add_common(lst)
    add_store(lst)
    lst.set_defaults(func=cmd_list, reads_only=True)

    search = ksub.add_parser("search", help="manual passages nearest to a query")
    search.add_argument("query")
    search.add_argument("-k", type=int, default=5, help="how many passages")
    add_common(search)
    add_store(search)
    search.set_defaults(func=cmd_search, reads_only=True)

    remove = ksub.add_parser("remove", help="remove a device and its models")
    remove.add_argument("device")
    add_common(remove)
    add_store(remove)
    remove.set_defaults(func=cmd_remove)


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    from edgeai.agents.planning.units import build_units
    from edgeai.knowledge.store import add_to_home

    report = add_to_home(settings.home, args.paths, build_units, url=settings.store)
    console = Console()
    for dev in report["added"]:
        console.print(f"added    {dev}")
    for dev in report["replaced"]:
        console.print(f"replaced {dev}")
    for note in report["overlaps"]:
        console.print(f"note: {note}", markup=False)
    if not args.no_prepare:
        _prepare_planner(settings)
    return 0


def _prepare_planner(settings: Settings) -> None:
    """Plan once now, so that the planner's embeddings of the new pool (background requests,
    questions, gloss targets: seconds of encoding) are in the home's cache before the first
    `plan` or `ask` needs them."""
    from edgeai.agents.planning import EmbeddedPlanner
    from edgeai.knowledge.store import open_store

    store = open_store(settings.home, url=settings.store)
    if store.models():
        with Console(stderr=True).status("preparing the planner's index of this pool"):
            EmbeddedPlanner(store).plan("warm up")


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    from edgeai.knowledge.store import open_store

    require_home(settings)
    store = open_store(settings.home, url=settings.store)
    manuals = store.manuals()
    if args.json:
        provenance = store.provenance()
        print(json.dumps(
            [m.front_matter() | {"provenance": provenance.get(m.device, {})} for m in manuals],
            indent=2,
        ))
        return 0
    table = Table(title=f"devices in {settings.store or settings.home}")
    for col in ("device", "tier", "kind", "model", "task", "inputs -> outputs"):
        table.add_column(col)
    for dev in manuals:
        if not dev.models:
            table.add_row(dev.device, dev.tier, dev.kind, "-", "-", "-")
        for i, m in enumerate(dev.models):
            table.add_row(
                dev.device if i == 0 else "",
                dev.tier if i == 0 else "",
                dev.kind if i == 0 else "",
                m.name,
                m.task,
                f"{', '.join(m.inputs)} -> {', '.join(m.outputs)}",
            )
    Console().print(table)
    return 0


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    from edgeai.knowledge.store import open_store

    require_home(settings)
    hits = open_store(settings.home, url=settings.store).search(args.query, k=args.k)
    table = Table(title=f"search: {args.query}")
    for col in ("score", "device", "model", "kind", "text"):
        table.add_column(col)
    for h in hits:
        table.add_row(f"{h.score:.3f}", h.device, h.model or "-", h.kind, h.text)
    Console().print(table)
    return 0


def cmd_remove(args: argparse.Namespace, settings: Settings) -> int:
    from edgeai.knowledge.store import open_store

    require_home(settings)
    models = open_store(settings.home, url=settings.store).remove_device(args.device)
    print(f"removed {args.device}" + (f" and its models {', '.join(models)}" if models else ""))
    _prepare_planner(settings)
    return 0

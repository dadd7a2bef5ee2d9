"""mkdocs hooks for the experiments page.

- The experiments' plots (experiments/results/*.png, outside docs/) are served as results/*.png, so strict mode
  checks every link to them.
- docs/experiments.md's line `<!-- experiments -->` becomes one section per experiment, read from
  experiments/results/eNN_*.json (claim, command, measured result, run time) with its plots, so the page follows
  the latest full run.
"""
from __future__ import annotations

import json
import os

from mkdocs.structure.files import File

RESULTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "experiments", "results")
PLACEHOLDER = "<!-- experiments -->"


def _pngs() -> list[str]:
    return sorted(n for n in os.listdir(RESULTS) if n.endswith(".png")) if os.path.isdir(RESULTS) else []


def on_files(files, config):
    for name in _pngs():
        files.append(File.generated(config, f"results/{name}", abs_src_path=os.path.join(RESULTS, name)))
    return files


def _section(record: dict, stem: str, pngs: list[str]) -> str:
    number = stem.split("_", 1)[0]
    lines = [f"## {number}: {record.get('claim', stem)}", "",
             f"`{record.get('command', 'python -m experiments.' + stem)}`", ""]
    if record.get("measured"):
        lines += [f"**Measured:** {record['measured']}", ""]
    facts = [f"{record['run_time_s']:.0f} s" if isinstance(record.get("run_time_s"), (int, float)) else None,
             record.get("machine"), record.get("date")]
    if any(facts):
        lines += ["*" + ", ".join(str(f) for f in facts if f) + "*", ""]
    for png in pngs:
        lines += [f"![{png}](results/{png})", ""]
    return "\n".join(lines)


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri != "experiments.md" or PLACEHOLDER not in markdown:
        return markdown
    sections, pngs = [], _pngs()
    for name in sorted(os.listdir(RESULTS)) if os.path.isdir(RESULTS) else []:
        if name.startswith("e") and name.endswith(".json"):
            stem = name[:-5]
            with open(os.path.join(RESULTS, name), encoding="utf-8") as f:
                record = json.load(f)
            sections.append(_section(record, stem, [p for p in pngs if p.startswith(stem + "_")]))
    return markdown.replace(PLACEHOLDER, "\n".join(sections) or "*No results yet: run `make experiments`.*")

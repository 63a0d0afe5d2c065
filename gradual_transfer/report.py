"""What the report says beside its figures and tables: a description of the run's own settings
(read by the captions, so a caption never names an architecture or epoch count the run did not
use) and each table as a self-contained HTML page (Snakemake's report shows HTML in place and
offers any other file only as a download).

The HTML page needs no network: its styles and its few lines of sorting and filtering script are
inline, so it works from the report's ``data:`` URI, from a disk, offline."""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np
import pandas as pd

from gradual_transfer.claims import designs
from gradual_transfer.grid import self_transfer, seeds, sweep, task_folds, upper_groups
from gradual_transfer.io import write_text

# The title of each table's page, by the name of its TSV (tables/<name>.tsv).
TABLE_TITLES = {
    "results": "Results: every model's scores",
    "summary": "Summary over units of replication",
    "transferability": "Transferability: gaps, tests and onsets per l_c",
    "cost": "What the grid cost",
    "per_speaker": "Phone error rate per speaker (ASR primary models)",
}


def describe_architecture(name: str, entry: dict) -> str:
    """``densenet_demo`` (DenseNet, depth 10), ``model_a`` (ConvNet: 2 conv and 3 FC groups) or
    ``resnet18_study`` (torchvision resnet18 in 5 groups, random initialisation)."""
    if entry["kind"] == "densenet":
        return f"``{name}`` (DenseNet, depth {entry['depth']})"
    if entry["kind"] == "torchvision":
        start = f"weights {entry['weights']}" if entry.get("weights") else "random initialisation"
        return f"``{name}`` (torchvision {entry['model']} in {len(entry['groups'])} groups, {start})"
    return f"``{name}`` (ConvNet: {len(entry['conv_groups'])} conv and {len(entry['fc_units'])} FC groups)"


def _numbers(values) -> str:
    return ", ".join(str(v) for v in values)


def describe_run(config: dict, experiment: str, demo: bool) -> str:
    """One paragraph of RST naming what an experiment of this run trained: architectures with
    their swept l_c, tasks with their epochs and folds, seeds, families and controls, whether
    the data are the demo's stand-ins, and what its design can claim
    (:mod:`gradual_transfer.claims`)."""
    entry = config["experiments"][experiment]
    archs = [f"{describe_architecture(a, config['architectures'][a])}, l_c = {_numbers(sweep(config, a))}"
             for a in entry["architectures"]]
    tasks = []
    for task in entry["tasks"]:
        recipe = config["tasks"][task]
        folds = task_folds(config, task)
        tasks.append(f"``{task}`` ({recipe['dataset']}; {recipe['training']['epochs']} training and "
                     f"{recipe['finetune']['epochs']} fine-tuning epochs"
                     + (f"; folds {_numbers(folds)}" if folds != [0] else "") + ")")
    families = upper_groups(config, experiment)
    source_folds = entry.get("ser_source_folds")
    text = (f"Architectures: {'; '.join(archs)}. Tasks: {'; '.join(tasks)}. "
            f"Seeds: {_numbers(seeds(config, experiment))}. "
            + (f"SER source folds transferred to ASR: {_numbers(source_folds)}. " if source_folds else "")
            + f"Transfer families: {', '.join(f'``{f}``' for f in families)}. "
            f"Self-transfer controls: {'on' if self_transfer(config, experiment) else 'off'}. "
            + ("**DEMO DATA**: generated stand-ins for the real corpora; the numbers say nothing about "
               "the paper's datasets." if demo else "Data: the real corpora."))
    claims = [design.sentence() for design in designs(config) if design.experiment == experiment]
    return text + (" What its design can claim: " + " ".join(claims) if claims else "")


# The sort and filter script of every table page: click a header to sort (numbers as numbers),
# type in the box to keep the rows containing the text.
_SCRIPT = """
const table = document.querySelector("table");
const body = table.tBodies[0];
const filter = document.getElementById("filter");
filter.addEventListener("input", event => {
  const needle = event.target.value.toLowerCase();
  let shown = 0;
  for (const row of body.rows) {
    const keep = row.textContent.toLowerCase().includes(needle);
    row.hidden = !keep; shown += keep;
  }
  document.getElementById("count").textContent = shown;
});
table.tHead.querySelectorAll("th").forEach((th, column) => th.addEventListener("click", () => {
  const ascending = th.dataset.order !== "asc";
  table.tHead.querySelectorAll("th").forEach(other => delete other.dataset.order);
  th.dataset.order = ascending ? "asc" : "desc";
  const key = row => row.cells[column].dataset.value ?? row.cells[column].textContent;
  const rows = Array.from(body.rows).sort((a, b) => {
    const x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
    const order = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
    return ascending ? order : -order;
  });
  body.append(...rows);
}));
// a link may carry a filter: table.html#filter=model_a
const linked = new URLSearchParams(location.hash.slice(1)).get("filter");
if (linked) { filter.value = linked; filter.dispatchEvent(new Event("input")); }
"""

_STYLE = """
body { font-family: sans-serif; font-size: 13px; margin: 1em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 2px 6px; white-space: nowrap; }
th { background: #eee; cursor: pointer; position: sticky; top: 0; }
th[data-order=asc]::after { content: " ▲"; } th[data-order=desc]::after { content: " ▼"; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #f7f7f7; }
"""


def _cell(value) -> str:
    """A table cell: numbers right-aligned and shown with 4 significant decimals, their full
    precision kept for sorting (and in the TSV); empty cells empty."""
    if value is None or value is pd.NA or (isinstance(value, (float, np.floating)) and math.isnan(value)):
        return "<td></td>"
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        number = float(value)
        shown = f"{number:g}" if number.is_integer() else f"{number:.4g}"
        return f'<td class="number" data-value="{number!r}">{shown}</td>'
    return f"<td>{html.escape(str(value))}</td>"


def table_html(table: pd.DataFrame, title: str, tsv_name: str) -> str:
    """A table as one self-contained HTML page: its title, a filter box, the row count, and the
    rows, sortable by any column. ``tsv_name`` names the TSV the report offers for download."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    rows = "\n".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>"
                     for row in table.astype(object).itertuples(index=False))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p><label>Filter rows: <input id="filter" type="search"></label> <span id="count">{len(table)}</span> of
{len(table)} rows shown. Click a column's name to sort. Full precision: <code>{html.escape(tsv_name)}</code> in the
report's tables.</p>
<table><thead><tr>{head}</tr></thead>
<tbody>
{rows}
</tbody></table>
<script>{_SCRIPT}</script>
</body></html>
"""


def write_table_page(tsv: str | Path, page: str | Path) -> None:
    """The page of a written TSV, read back from it: the page shows exactly what downloads."""
    tsv = Path(tsv)
    table = pd.read_csv(tsv, sep="\t", keep_default_na=False, na_values=[""])
    write_text(page, table_html(table, TABLE_TITLES.get(tsv.stem, tsv.stem), tsv.name))

"""What the report says beside its figures and tables: a description of the run's own settings
(read by the captions, so a caption never names an architecture or epoch count the run did not
use), the landing text, and each table as a self-contained HTML page (Snakemake's report shows
HTML in place and offers any other file only as a download).

The HTML page needs no network: its styles and its few lines of sorting, filtering and
column-choosing script are inline, so it works from the report's ``data:`` URI, from a disk,
offline."""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np
import pandas as pd

from gradual_transfer.architectures import group_names, network
from gradual_transfer.claims import designs, family_contrast_sentence
from gradual_transfer.columns import DESCRIPTIONS, IDENTIFIERS, KEY_COLUMNS
from gradual_transfer.grid import FAMILIES, self_transfer, seeds, sweep, task_folds, upper_groups
from gradual_transfer.io import write_text
from gradual_transfer.tables import DECOMPOSITION, DECOMPOSITION_MEANING

# The title of each table's page, by the name of its TSV (tables/<name>.tsv).
TABLE_TITLES = {
    "results": "Results: every model's scores",
    "summary": "Summary over units of replication",
    "transferability": "Transferability: gaps, tests and onsets per l_c",
    "cost": "What the grid cost",
    "per_speaker": "Phone error rate per speaker (ASR primary models)",
    "estimates": "Transferability estimates from the primaries",
    "estimate_agreement": "How far the estimates rank the transfers as measured",
    "similarity": "Similarity of representations per layer group (CKA)",
    "similarity_primaries": "Similarity of the source and target primaries per layer group (CKA)",
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


def held_constant(lc_values: list[int], groups: list[str]) -> list[str]:
    """Each l_c with the layer groups it holds constant, by the architecture's own names
    (``0: none``, ``3: conv0–transition1``): the caption's list, which the figures' l_c ticks
    (numbers only, so they never run into each other) refer to."""
    labels = []
    for lc in sorted(lc_values):
        frozen = groups[:lc]
        labels.append(f"{lc}: " + ("none" if not frozen else frozen[0] if len(frozen) == 1
                                    else f"{frozen[0]}–{frozen[-1]}"))
    return labels


def describe_groups(config: dict, arch: str) -> str:
    """``densenet_demo`` holds constant at l_c 0: none; 3: conv0–transition1; ...."""
    groups = group_names(network(config["architectures"][arch]))
    return f"``{arch}``: {'; '.join(held_constant(sweep(config, arch), groups))}"


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
    text += (" Layer groups held constant at each l_c (the figures' ticks): "
             + "; ".join(describe_groups(config, arch) for arch in entry["architectures"]) + ".")
    contrast = family_contrast_sentence(config, experiment)
    claims = [design.sentence() for design in designs(config) if design.experiment == experiment]
    return (text + (f" {contrast}" if contrast else "")
            + (" What its design can claim: " + " ".join(claims) if claims else ""))


def enabled_experiments(config: dict) -> list[str]:
    return [name for name, entry in config["experiments"].items() if entry.get("enabled")]


def controls_text(config: dict) -> str:
    """What the self-transfer control of each family that ran measures, naming the experiments
    it ran in; nothing about a family that did not run."""
    families: dict[str, list[str]] = {}
    without = []
    for name in enabled_experiments(config):
        if not self_transfer(config, name):
            without.append(name)
            continue
        for family in upper_groups(config, name):
            families.setdefault(family, []).append(name)
    sentences = []
    for family in FAMILIES:
        if family in families:
            control_part, rest = DECOMPOSITION[family]
            control_meaning, rest_meaning = DECOMPOSITION_MEANING[family]
            sentences.append(f"In the ``{family}`` family ({', '.join(families[family])}) the control's gap to the "
                             f"target's primary model (``{control_part}``) measures {control_meaning}, and the "
                             f"transfer minus the control (``{rest}``) measures {rest_meaning}.")
    if without:
        sentences.append(f"Self-transfer controls are off in {', '.join(without)}: their gaps are not split.")
    return " ".join(sentences)


def landing_text(config: dict, demo: bool) -> str:
    """The report's landing text (RST): the method, what each enabled experiment trained and can
    claim (:func:`describe_run`), what each family's self-transfer control measures
    (:func:`controls_text`, only for the families that ran), and where the figures and tables are."""
    experiments = "\n\n".join(f"**{name}**: {describe_run(config, name, demo)}" for name in enabled_experiments(config))
    return f"""Gradual transfer learning (Fayek, Cavedon & Wu): how transferable each layer group of a network
is between datasets and tasks. For every pair of tasks a primary model is trained on the
source, transferred to the target with a fresh output layer and its first l_c layer groups held
constant, for every l_c; the figures plot the target's score against l_c.

{experiments}

**Self-transfer controls**: each task's primary model transferred to its own task exactly as to
another one. {controls_text(config) or "None ran."}

Figures 1 and 2 draw the test split (the validation split, which chose each model, is in
supplementary figures), every seed or fold as a point and the mean as a line; Figure 3 condenses
every pair into the share of the target's headroom lost, and the part beyond the control. Each
table is a page under "Tables" (its key columns first, every column described), and at full
precision under "Tables (TSV, full precision)".
"""


# The script of every table page: click a header to sort (numbers as numbers), type in the box
# to keep the rows containing the text, choose the columns shown (the key ones first); the
# identifier columns stay in view when the page scrolls sideways (their offsets measured as shown).
_SCRIPT = """
const table = document.getElementById("table");
const body = table.tBodies[0];
const headers = Array.from(table.tHead.rows[0].cells);
const boxes = Array.from(document.querySelectorAll("#columns input[data-column]"));
const layout = document.getElementById("layout");
const filter = document.getElementById("filter");
function arrange() {
  const hidden = new Set(boxes.filter(box => !box.checked).map(box => Number(box.dataset.column)));
  const hide = Array.from(hidden, i => `#table tr > :nth-child(${i + 1}) { display: none; }`).join("\\n");
  layout.textContent = hide;  // measure the identifiers where they lie, none of them sticky yet
  const shown = headers.filter((th, i) => "identifier" in th.dataset && !hidden.has(i));
  const origin = shown.length ? shown[0].offsetLeft : 0;
  const sticky = shown.map((th, k) => {
    const nth = `:nth-child(${headers.indexOf(th) + 1})`;
    const edge = k === shown.length - 1 ? " box-shadow: inset -2px 0 0 #999;" : "";
    return `#table tr > ${nth} { position: sticky; left: ${th.offsetLeft - origin}px; z-index: 1;${edge} }\\n` +
      `#table thead th${nth} { z-index: 3; }`;
  });
  layout.textContent = hide + "\\n" + sticky.join("\\n");
  document.getElementById("shown-columns").textContent = headers.length - hidden.size;
}
function showColumns(keep) {
  boxes.forEach(box => { box.checked = keep(headers[Number(box.dataset.column)]); });
  arrange();
}
document.getElementById("key-columns").addEventListener("click",
  () => showColumns(th => "key" in th.dataset));
document.getElementById("all-columns").addEventListener("click", () => showColumns(() => true));
boxes.forEach(box => box.addEventListener("change", arrange));
filter.addEventListener("input", event => {
  const needle = event.target.value.toLowerCase();
  let shown = 0;
  for (const row of body.rows) {
    const keep = row.textContent.toLowerCase().includes(needle);
    row.hidden = !keep; shown += keep;
  }
  document.getElementById("count").textContent = shown;
});
headers.forEach((th, column) => th.addEventListener("click", () => {
  const ascending = th.dataset.order !== "asc";
  headers.forEach(other => delete other.dataset.order);
  th.dataset.order = ascending ? "asc" : "desc";
  const key = row => row.cells[column].dataset.value ?? row.cells[column].textContent;
  const rows = Array.from(body.rows).sort((a, b) => {
    const x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
    const order = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
    return ascending ? order : -order;
  });
  body.append(...rows);
}));
// a link may carry a filter and the columns: table.html#filter=model_a&columns=all
const linked = new URLSearchParams(location.hash.slice(1));
if (linked.get("columns") === "all") { showColumns(() => true); } else { arrange(); }
if (linked.get("filter")) { filter.value = linked.get("filter"); filter.dispatchEvent(new Event("input")); }
"""

_STYLE = """
body { font-family: sans-serif; font-size: 12px; margin: 0.6em; }
h1 { font-size: 1.4em; margin: 0 0 0.4em; }
p, details { margin: 0.3em 0; }
details ul { columns: 2 28em; margin: 0.3em 0 0.6em; padding-left: 1.2em; }
details li { break-inside: avoid; margin-bottom: 0.2em; }
table { border-collapse: separate; border-spacing: 0; }
th, td { border: 1px solid #ccc; border-width: 0 1px 1px 0; padding: 2px 4px; white-space: nowrap; background: #fff; }
tr > :first-child { border-left-width: 1px; }
th { background: #eee; cursor: pointer; position: sticky; top: 0; z-index: 2; border-top-width: 1px;
     white-space: normal; vertical-align: bottom; text-align: left; max-width: 9em; }
th[data-order=asc]::after { content: " ▲"; } th[data-order=desc]::after { content: " ▼"; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
td.long { white-space: normal; min-width: 9em; max-width: 24em; }
tbody tr:nth-child(even) > td { background: #f7f7f7; }
"""


def _cell(value) -> str:
    """A table cell: numbers right-aligned and shown with 4 significant decimals, their full
    precision kept for sorting (and in the TSV); empty cells empty; long text wraps."""
    if value is None or value is pd.NA or (isinstance(value, (float, np.floating)) and math.isnan(value)):
        return "<td></td>"
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        number = float(value)
        shown = f"{number:g}" if number.is_integer() else f"{number:.4g}"
        return f'<td class="number" data-value="{number!r}">{shown}</td>'
    text = str(value)
    wraps = ' class="long"' if len(text) > LONG_TEXT else ""
    return f"<td{wraps}>{html.escape(text)}</td>"


LONG_TEXT = 40  # characters: a longer text cell wraps instead of widening its column


def _header_name(column: str) -> str:
    """A column's name, breakable after each underscore so that narrow headers wrap."""
    return html.escape(column).replace("_", "_<wbr>")


def key_columns(table: pd.DataFrame, name: str) -> list[str]:
    """The columns the page shows first (:data:`gradual_transfer.columns.KEY_COLUMNS`; every
    column for a table with none declared), less the part beyond the control of a family that
    is not in the table. An empty column of a family that ran stays: no p-value is a finding."""
    chosen = KEY_COLUMNS.get(name)
    if not chosen:
        return list(table.columns)
    ran = set(table["upper_groups"].dropna()) if "upper_groups" in table.columns else set()
    absent = {part for family, parts in DECOMPOSITION.items() if family not in ran for part in parts}
    return [c for c in table.columns if c in chosen and c not in absent]


def table_html(table: pd.DataFrame, title: str, tsv_name: str, name: str | None = None) -> str:
    """A table as one self-contained HTML page: its title, a filter box, the row count, the
    choice of columns with what each holds (:data:`gradual_transfer.columns.DESCRIPTIONS`, also
    each header's tooltip), and the rows, sortable by any column. It opens on the key columns of
    table `name` (the TSV's stem), its identifier columns frozen at the left. ``tsv_name``
    names the TSV the report offers for download."""
    name = name or Path(tsv_name).stem
    key = set(key_columns(table, name))
    identifiers = set(IDENTIFIERS.get(name, []))
    heads, choices = [], []
    for i, column in enumerate(table.columns):
        description = DESCRIPTIONS.get(column, "")
        marks = (" data-identifier" if column in identifiers else "") + (" data-key" if column in key else "")
        heads.append(f'<th{marks} title="{html.escape(description)}">{_header_name(column)}</th>')
        choices.append(f'<li><label><input type="checkbox" data-column="{i}"{" checked" if column in key else ""}> '
                       f"<code>{html.escape(column)}</code></label>"
                       + (f": {html.escape(description.replace('``', ''))}" if description else "") + "</li>")
    rows = "\n".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>"
                     for row in table.astype(object).itertuples(index=False))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_STYLE}</style><style id="layout"></style></head>
<body>
<h1>{html.escape(title)}</h1>
<p><label>Filter rows: <input id="filter" type="search"></label> <span id="count">{len(table)}</span> of
{len(table)} rows shown. Columns: <button id="key-columns" type="button">key columns</button>
<button id="all-columns" type="button">all {len(table.columns)}</button> (<span id="shown-columns">{len(key)}</span>
shown). Click a column's name to sort; hover over it for what it holds. Full precision:
<code>{html.escape(tsv_name)}</code> in the report's tables.</p>
<details id="columns"><summary>Choose the columns, and what each holds</summary>
<ul>
{chr(10).join(choices)}
</ul></details>
<table id="table"><thead><tr>{"".join(heads)}</tr></thead>
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
    write_text(page, table_html(table, TABLE_TITLES.get(tsv.stem, tsv.stem), tsv.name, tsv.stem))

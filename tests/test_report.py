"""The report's text and tables: the run's own settings in the captions and the landing text
(what each family's control measures, only for the families that ran), and each table as a
self-contained HTML page that opens on its key columns, describes every column from one place
(which the README's table of columns repeats), and that a real browser shows as a table, sorts,
filters, and scrolls with its identifiers frozen."""

from __future__ import annotations

import re

import pandas as pd

from browser import Browser, _TABLE_SEEN, needs_browser, rendered_dom
from conftest import REPO, load_yaml, unshared
from gradual_transfer.columns import DESCRIPTIONS, KEY_COLUMNS, TABLE_COLUMNS, columns_markdown
from gradual_transfer.config import merge
from gradual_transfer.report import describe_run, key_columns, landing_text, table_html, write_table_page


def demo_config() -> dict:
    return unshared(merge(load_yaml(REPO / "config.yaml"), load_yaml(REPO / "config.demo.yaml")))


def test_captions_describe_the_runs_own_settings():
    config = demo_config()
    images = describe_run(config, "images", demo=True)
    assert "``densenet_demo`` (DenseNet, depth 10), l_c = 0, 3, 5, 7" in images and "DenseNet-40" not in images
    assert "8 training and 2 fine-tuning epochs" in images and "``copy``, ``reinit``" in images
    assert "Self-transfer controls: on" in images and "DEMO DATA" in images
    # the groups behind the figures' numbered ticks, once
    assert "``densenet_demo``: 0: none; 3: conv0–transition1; 5: conv0–transition2; 7: conv0–final" in images
    # the demo's families train for different budgets: said, with each budget
    assert "the families train with different budgets" in images and "no contrast between them" in images
    assert "``copy``: finetune: 2 epochs" in images and "``reinit``: training: 8 epochs" in images
    speech = describe_run(config, "speech", demo=True)
    assert "``model_a_demo`` (ConvNet: 2 conv and 3 FC groups), l_c = 0, 2, 5" in speech
    assert "folds 1, 2" in speech and "SER source folds transferred to ASR: 1" in speech
    assert "budget" not in speech  # one family: nothing to contrast
    config["architectures"]["densenet_demo"]["depth"] = 13
    config["experiments"]["images"]["seeds"] = [0, 1, 2]
    config["tasks"]["cifar100"]["finetune"]["epochs"] = 8
    changed = describe_run(config, "images", demo=False)
    assert "depth 13" in changed and "Seeds: 0, 1, 2" in changed and "DEMO DATA" not in changed
    assert "Into cifar100 both families train with the same budget" in changed


def test_the_landing_text_says_what_each_familys_control_measures_only_for_families_that_ran():
    config = demo_config()
    config["experiments"]["speech"]["self_transfer"] = True  # (the demo leaves its speech controls out)
    both = landing_text(config, demo=True)
    assert "In the ``copy`` family (images, speech)" in both and "In the ``reinit`` family (images)" in both
    assert "``co_adaptation``" in both and "``rehead_and_finetune``" in both
    assert "separates co-adaptation from specificity" not in both
    config["experiments"]["images"]["enabled"] = False  # the speech runs: copy only
    speech = landing_text(config, demo=True)
    assert "``reinit``" not in speech and "``co_adaptation``" not in speech and "``specificity``" not in speech
    assert "In the ``copy`` family (speech) the control's gap to the target's primary model " \
           "(``rehead_and_finetune``) measures what a new output layer and further fine-tuning" in speech
    config["experiments"]["speech"]["self_transfer"] = False
    assert "Self-transfer controls are off in speech: their gaps are not split" in landing_text(config, demo=True)


TABLE = pd.DataFrame({"arch": ["model_a", "model_b", "model_a"], "lc": [5, 0, 10], "mean": [12.5, 3.25, float("nan")],
                      "note": ["<b>x</b> & y", "none", ""]})


def test_a_table_page_holds_every_cell_escaped_and_needs_no_network(tmp_path):
    page = table_html(TABLE, "Summary", "summary.tsv")
    assert page.count("<tr>") == 1 + len(TABLE)
    assert "&lt;b&gt;x&lt;/b&gt; &amp; y" in page and "<b>x</b>" not in page
    assert 'data-value="12.5"' in page and "<td></td>" in page  # the NaN: an empty cell
    assert not re.search(r"(src|href)=\"?https?:", page)  # styles and script inline
    tsv = tmp_path / "summary.tsv"
    TABLE.to_csv(tsv, sep="\t", index=False)
    write_table_page(tsv, tmp_path / "summary.html")
    assert "Summary over units of replication" in (tmp_path / "summary.html").read_text()


def transferability_like(families=("copy", "reinit")) -> pd.DataFrame:
    columns = TABLE_COLUMNS["transferability"]
    rows = [{c: (family if c == "upper_groups" else 1.0) for c in columns} for family in families]
    return pd.DataFrame(rows, columns=columns)


def test_a_table_page_opens_on_its_key_columns_and_describes_every_column():
    table = transferability_like()
    page = table_html(table, "Transferability", "transferability.tsv")
    heads = re.findall(r"<th((?: [^>]*)?)>(.*?)</th>", page)
    assert [name.replace("_<wbr>", "_") for _, name in heads] == list(table.columns)
    for attributes, name in heads:
        column = name.replace("_<wbr>", "_")
        assert f'title="{DESCRIPTIONS[column]}"'.replace("&", "&amp;").replace("'", "&#x27;") in attributes, column
        assert ("data-key" in attributes) == (column in KEY_COLUMNS["transferability"]), column
        assert ("data-identifier" in attributes) == (column in TABLE_COLUMNS["transferability"][:9]), column
    assert "normalised_gap" in key_columns(table, "transferability") and "diagnostic" in key_columns(
        table, "transferability")
    # a run without reinit: its part beyond the control is not a key column; empty tests still are
    copy_only = key_columns(transferability_like(["copy"]), "transferability")
    assert "specificity" not in copy_only and {"source_features_cost", "gap_p", "onset_lc"} <= set(copy_only)
    assert page.count('type="checkbox"') == len(table.columns)  # every column can be shown or hidden


def test_every_column_of_every_table_is_described_once_and_the_readme_says_the_same():
    for name, columns in TABLE_COLUMNS.items():
        assert not set(columns) - set(DESCRIPTIONS), name
        assert set(KEY_COLUMNS[name]) <= set(columns), name
    assert columns_markdown() in (REPO / "README.md").read_text(), \
        "README's table of columns differs: python -m gradual_transfer.columns prints it"


@needs_browser
def test_a_browser_shows_the_page_as_a_table_and_filters_it(tmp_path):
    page = tmp_path / "table.html"
    page.write_text(table_html(TABLE, "Summary", "summary.tsv"))
    dom = rendered_dom(page.as_uri())
    assert dom.count("<tr") == 4 and re.search(r"<th [^>]*>arch</th>", dom)
    dom = rendered_dom(page.as_uri() + "#filter=model_a")  # the script ran: model_b's row hidden
    assert dom.count("<tr hidden") == 1 and '<span id="count">2</span>' in dom


@needs_browser
def test_a_browser_shows_the_key_columns_first_and_keeps_the_identifiers_in_view(tmp_path):
    table = transferability_like(["copy"] * 40)
    page = tmp_path / "transferability.html"
    page.write_text(table_html(table, "Transferability", "transferability.tsv"))
    with Browser(width=900, height=600) as browser:
        browser.open(page.as_uri())
        first = browser.evaluate(_TABLE_SEEN)
        shown = [h["name"] for h in first["headers"] if h["shown"]]
        assert shown == key_columns(table, "transferability")
        assert all(h["right"] <= first["viewport"] for h in first["headers"] if h["shown"])  # no scrolling
        browser.evaluate("document.getElementById('all-columns').click(); window.scrollTo(100000, 0)")
        scrolled = browser.evaluate(_TABLE_SEEN)
        assert all(h["shown"] for h in scrolled["headers"]) and scrolled["scrolled"] > 1000
        frozen = [h for h in scrolled["headers"] if h["identifier"]]
        assert all(h["frozen"] for h in frozen) and abs(frozen[0]["left"]) < 1  # at the left edge, in view
        assert [h["name"] for h in frozen] == list(table.columns[:9])
        lc = frozen[-1]
        assert lc["right"] < scrolled["viewport"] / 2  # the identifiers side by side, not piled up
        browser.evaluate("document.getElementById('key-columns').click()")
        assert [h["name"] for h in browser.evaluate(_TABLE_SEEN)["headers"] if h["shown"]] == shown

"""The report's text and tables: the run's own settings in the captions, and each table as a
self-contained HTML page that a real browser shows as a table, sorts and filters offline."""

from __future__ import annotations

import re

import pandas as pd

from browser import needs_browser, rendered_dom
from conftest import REPO, load_yaml, unshared
from gradual_transfer.config import merge
from gradual_transfer.report import describe_run, table_html, write_table_page


def demo_config() -> dict:
    return unshared(merge(load_yaml(REPO / "config.yaml"), load_yaml(REPO / "config.demo.yaml")))


def test_captions_describe_the_runs_own_settings():
    config = demo_config()
    images = describe_run(config, "images", demo=True)
    assert "``densenet_demo`` (DenseNet, depth 10), l_c = 0, 3, 5, 7" in images and "DenseNet-40" not in images
    assert "8 training and 2 fine-tuning epochs" in images and "``copy``, ``reinit``" in images
    assert "Self-transfer controls: on" in images and "DEMO DATA" in images
    speech = describe_run(config, "speech", demo=True)
    assert "``model_a_demo`` (ConvNet: 2 conv and 3 FC groups), l_c = 0, 2, 5" in speech
    assert "folds 1, 2" in speech and "SER source folds transferred to ASR: 1" in speech
    config["architectures"]["densenet_demo"]["depth"] = 13
    config["experiments"]["images"]["seeds"] = [0, 1, 2]
    changed = describe_run(config, "images", demo=False)
    assert "depth 13" in changed and "Seeds: 0, 1, 2" in changed and "DEMO DATA" not in changed


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


@needs_browser
def test_a_browser_shows_the_page_as_a_table_and_filters_it(tmp_path):
    page = tmp_path / "table.html"
    page.write_text(table_html(TABLE, "Summary", "summary.tsv"))
    dom = rendered_dom(page.as_uri())
    assert dom.count("<tr") == 4 and "<th>arch</th>" in dom
    dom = rendered_dom(page.as_uri() + "#filter=model_a")  # the script ran: model_b's row hidden
    assert dom.count("<tr hidden") == 1 and '<span id="count">2</span>' in dom

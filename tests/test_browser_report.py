"""The report's HTML in headless Chromium at a 1,050 px window: what an antibody engineer sees on a laptop.

``python -m protein_didi.report`` runs on real antibody chains (the shipped repertoire's test split, one with its
Trp41 changed to Leu) without structures, then the page is measured in the browser: no header broken inside a
word, no number cell wrapped, the designs' table fits without scrolling, no column blank on every row, the
antibody sections before the protein ones, and a monospace sequence column holding each design. Same browser
set-up as ``test_browser.py``; skipped without chromium/chromedriver, ANARCI or hmmscan.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import pytest
import test_browser
from test_browser import driver  # noqa: F401 (a fixture)
from test_report_antibody import _antibodies, _no_trp41

from protein_didi import report
from protein_didi.protein.fasta import write_fasta

pytestmark = [
    *test_browser.pytestmark,  # slow; skipped without chromium and chromedriver
    pytest.mark.skipif(
        importlib.util.find_spec("anarci") is None or shutil.which("hmmscan") is None or not shutil.which("mmseqs"),
        reason="needs anarci (pip install -e .[antibody]), hmmscan (hmmer) and mmseqs (mmseqs2)",
    ),
]
WIDTH = 1050
BLANK = re.compile(r"^(not computed|–\d*|)$")
Page = tuple[Path, list[tuple[str, str]]]  # report.html and the designs in it

LINES = """
// per element: its text, how many lines the text takes, how many words it has
const lines = el => {
  const r = document.createRange(); r.selectNodeContents(el);
  return new Set([...r.getClientRects()].filter(x => x.width > 0).map(x => Math.round(x.bottom))).size;
};
return [...document.querySelectorAll(arguments[0])].map(el => [
  el.innerText.trim(), lines(el), el.innerText.trim().split(/\\s+/).filter(Boolean).length]);
"""
COLUMNS = """
// per table: for each column, the texts of its body cells (group rows left out)
return [...document.querySelectorAll('table')].map(t => {
  const rows = [...t.querySelectorAll('tbody tr')].filter(r => !r.classList.contains('group'));
  const n = t.querySelectorAll('thead th').length;
  return [...Array(n).keys()].map(k => rows.map(r => (r.children[k] || {innerText: ''}).innerText.trim()));
});
"""


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Page:
    """report.html on five real chains (four valid, one without Trp41), no structures, and the chains."""
    root = tmp_path_factory.mktemp("browser-report")
    records = _no_trp41(_antibodies(5))
    fasta = write_fasta(root / "designs.fasta", records)
    argv = ["--fasta", str(fasta), "--out", str(root / "out"), "--no-fold", "--threads", "1"]
    assert report.main(argv) == 0
    return root / "out" / "report.html", records


def test_report_page_reads_on_a_laptop(page: Page, driver: object, tmp_path: Path) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    path, records = page
    drv = driver
    drv.set_window_size(WIDTH, 1000)
    drv.get(path.as_uri())
    drv.execute_script("document.querySelectorAll('details').forEach(d => d.open = true)")
    drv.save_screenshot(str(tmp_path / "report-top.png"))
    width = drv.execute_script("return document.documentElement.clientWidth")
    assert width <= WIDTH
    assert drv.execute_script("return document.documentElement.scrollWidth") <= width, "the page scrolls sideways"

    # headers break between words only (letter-by-letter breaking gives more lines than words) …
    for text, lines, words in drv.execute_script(LINES, "th"):
        assert lines <= max(words, 1), f"header {text!r} takes {lines} lines for {words} words; see {tmp_path}"
    # … and numbers, chain types and V genes never wrap
    cells = "table.per-sequence td:not(.txt):not(.mono):not(.id):not(.seqcell)"
    wrapped = [text for text, lines, _ in drv.execute_script(LINES, cells) if lines > 1]
    assert not wrapped, f"wrapped cells: {wrapped[:5]}"

    # the designs' table fits the page without its scroll bar
    designs = drv.find_elements(By.CSS_SELECTOR, "table.per-sequence")[0]
    box = designs.find_element(By.XPATH, "..")
    assert drv.execute_script("return arguments[0].scrollWidth <= arguments[0].clientWidth", box)

    # no column that is blank or "not computed" on every row, in any table
    for t, columns in enumerate(drv.execute_script(COLUMNS)):
        for k, texts in enumerate(columns):
            assert not texts or not all(BLANK.match(x) for x in texts), f"table {t}, column {k} is blank on every row"
    body = drv.find_element(By.TAG_NAME, "body").text
    assert "antibody (see notes)" not in body

    # antibody sections first, the designs' table right after the antibody metrics, protein ones after
    tops = {h.text: h.location["y"] for h in drv.find_elements(By.TAG_NAME, "h2")}
    order = ["Antibody metrics (ANARCI, IMGT)", "Designs (5)", "Sequence liabilities (antibody sets)",
             "Sequence statistics"]  # fmt: skip
    assert [tops[h] for h in order] == sorted(tops[h] for h in order), tops
    assert not [h for h in tops if "ESMFold" in h or "IgFold" in h]  # nothing folded: no empty structure sections

    # a sequence column: monospace, each design's full sequence in order, and the planted design flagged beside it
    head = [th.text for th in designs.find_elements(By.CSS_SELECTOR, "thead th")]
    assert "sequence" in head and "checks" in head
    seqs = designs.find_elements(By.CSS_SELECTOR, "td.seqcell div.seq")
    assert ["".join(s.text.split()) for s in seqs] == [q for _, q in records]
    assert "mono" in seqs[0].value_of_css_property("font-family").lower()
    row = designs.find_element(By.XPATH, ".//tr[td[contains(., 'no_trp41')]]")
    checks = row.find_elements(By.TAG_NAME, "td")[head.index("checks")].text
    assert checks == "no Trp41 (L41)"

"""The antibody report page in headless Debian Chromium: reference rows, liabilities, regions; fits screen and print.

Same checks as the protein page in ``test_browser.py`` (no horizontal scroll at
laptop widths or on A4, every figure decoded, no raw None/NaN), on a report of
antibody-student designs. Skipped when chromium/chromedriver or ANARCI are absent.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
CHROMEDRIVER = shutil.which("chromedriver")
DESIGNS = ROOT / "bench" / "results" / "antibody_quality_vs_nfe_samples" / "antibody-student@8.fasta"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None or CHROMEDRIVER is None,
        reason="needs chromium and chromedriver (Debian: apt-get install chromium chromium-driver)",
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("anarci") is None or shutil.which("hmmscan") is None,
        reason="anarci (pip install -e .[antibody]) or hmmscan (apt-get install hmmer) is not installed",
    ),
]


@pytest.fixture()
def driver(tmp_path: Path) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                "--window-size=1400,1100", f"--user-data-dir={tmp_path / 'chromium-profile'}"):  # fmt: skip
        options.add_argument(arg)
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    drv.set_page_load_timeout(120)
    try:
        yield drv
    finally:
        drv.quit()


@pytest.fixture(scope="module")
def antibody_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 antibody-student designs (one of them not numbered by ANARCI) through ``report.main``; no ESMFold."""
    from protein_didi import report
    from protein_didi.protein.fasta import iter_fasta, read_fasta, write_fasta

    db = Path("/usr/share/doc/mmseqs2/example-data/DB.fasta.gz")
    if shutil.which("mmseqs") is None or not db.is_file() or not DESIGNS.is_file():
        pytest.skip("needs mmseqs2, mmseqs2-examples and the shipped benchmark samples")
    root = tmp_path_factory.mktemp("antibody-page")
    designs = write_fasta(root / "ab.fasta", read_fasta(DESIGNS)[:8])
    proteins = [(f"p{i}", s[:120]) for i, (_, s) in zip(range(40), iter_fasta(db), strict=False)]
    train = write_fasta(root / "train.fasta", proteins[:20])
    refs = write_fasta(root / "refs.fasta", proteins[20:])
    argv = ["--fasta", str(designs), "--labels", "antibody-student-8", "--out", str(root / "out"), "--no-fold",
            "--threads", "1", "--train", str(train), "--reference", str(refs)]  # fmt: skip
    assert report.main(argv) == 0
    return root / "out" / "report.html"


@pytest.mark.parametrize("width", [1400, 1024])
def test_antibody_report_reads_against_real_antibodies_and_fits(
    antibody_page: Path, driver: object, tmp_path: Path, width: int
) -> None:
    drv = driver
    drv.set_window_size(width, 900)
    drv.get(antibody_page.as_uri())
    drv.execute_script("document.querySelectorAll('details').forEach(d => d.open = true)")
    scroll = "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    page_w, view_w = drv.execute_script(scroll)
    drv.save_screenshot(str(tmp_path / f"antibody-report-{width}.png"))
    assert page_w <= view_w, f"horizontal scroll at {width} px: page {page_w} px > {view_w} px; see {tmp_path}"
    images = drv.execute_script(
        "return [...document.images].map(i => [i.alt, i.complete, i.naturalWidth, i.getBoundingClientRect().width])"
    )
    alts = " | ".join(alt for alt, *_ in images)
    assert "natural antibodies' composition" in alts and "CDR length distributions" in alts, alts
    assert all(done and natural > 0 and shown > 100 for _, done, natural, shown in images), images
    text = drv.execute_script("return document.body.innerText")
    for raw in ("None", "<NA>", "NaN", "nan"):
        assert not re.search(rf"(?<![\w-]){re.escape(raw)}(?![\w-])", text), f"raw {raw!r} in the page"
    headings = ["Antibody metrics (ANARCI, IMGT)", "Sequence liabilities (antibody sets)",
                "Antibody regions: CDR lengths and germline identity (IMGT)"]  # fmt: skip
    # every antibody table carries the real repertoire rows, named for what they are
    tables = drv.execute_script(
        "return arguments[0].map(t => [...document.querySelectorAll('h2')].find(h => h.textContent === t))"
        ".map(h => h ? h.nextElementSibling.innerText : '')",
        headings,
    )
    assert all("natural antibody ref." in t and "real VH (OAS, test split)" in t for t in tables), tables
    assert "heavy/light chimeras (%)" in tables[0] and "valid chains (%)" in tables[0]
    if importlib.util.find_spec("iglm") is not None:
        assert all("rival (IgLM)" in t for t in tables)
    else:
        assert "no IgLM rival row" in text
    assert "not numbered by ANARCI" in text  # the unnumbered design says why it has no liabilities
    assert re.search(r"(deamidation|isomerisation|glycosylation|cysteine|oxidation) \w+ \d+ \((CDR|FR)\d, IMGT", text)
    drv.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    drv.set_window_size(703, 900)
    page_w, view_w = drv.execute_script(scroll)
    assert page_w <= view_w, f"print layout overflows: {page_w} px > {view_w} px"
    drv.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})

"""The app in a real browser: headless Debian Chromium drives ``streamlit run apps/protein_app.py``.

Needs the Debian packages ``chromium`` and ``chromium-driver`` plus the pip package
``selenium``; skipped only when the browser binaries are absent. Screenshots land
in the test's tmp dir (printed on failure).
"""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "apps" / "protein_app.py"
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None or CHROMEDRIVER is None,
        reason="needs chromium and chromedriver (Debian: apt-get install chromium chromium-driver)",
    ),
]

WAIT = 120  # seconds; the first script run imports torch and transformers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``streamlit run`` on 127.0.0.1 at a free port; stopped after the module."""
    log_dir = tmp_path_factory.mktemp("streamlit")
    port = _free_port()
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.headless=true",
        "--server.address=127.0.0.1",
        f"--server.port={port}",
        "--server.fileWatcherType=none",
        "--browser.gatherUsageStats=false",
        "--global.developmentMode=false",
    ]
    with open(log_dir / "streamlit.log", "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"streamlit did not start: {(log_dir / 'streamlit.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture()
def driver(tmp_path: Path) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        # WebGL without a GPU: software rendering, opted in explicitly (the page is our own)
        "--use-angle=swiftshader",
        "--enable-unsafe-swiftshader",
        "--window-size=1400,1100",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(arg)
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    drv.set_page_load_timeout(WAIT)
    try:
        yield drv
    finally:
        drv.quit()


def helix_pdb(path: Path, n: int = 40) -> Path:
    """An ideal poly-Ala α-helix (N, CA, C, O) lying across the view; B-factors ramp 30 → 96 over the pLDDT bands."""
    import biotite.structure as struc
    from biotite.structure.io.pdb import PDBFile

    # cylindrical coordinates (radius Å, phase °, rise Å) of backbone atoms in an ideal α-helix
    geometry = {"N": (1.55, -28.0, -0.9), "CA": (2.3, 0.0, 0.0), "C": (1.6, 28.0, 0.9), "O": (2.0, 40.0, 1.9)}
    atoms = struc.AtomArray(4 * n)
    for i in range(n):
        for j, (name, (radius, phase, dz)) in enumerate(geometry.items()):
            angle = np.radians(100.0 * i + phase)
            k = 4 * i + j
            atoms.coord[k] = (1.5 * i + dz, radius * np.cos(angle), radius * np.sin(angle))  # axis along x
            atoms.atom_name[k], atoms.element[k] = name, name[0]
            atoms.res_id[k], atoms.res_name[k], atoms.chain_id[k] = i + 1, "ALA", "A"
    atoms.set_annotation("b_factor", np.repeat(np.linspace(30.0, 96.0, n), 4))
    pdb = PDBFile()
    pdb.set_structure(atoms)
    pdb.write(str(path))
    return path


def _wait(drv: object, condition: object, what: str, timeout: float = WAIT) -> object:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(drv, timeout, poll_frequency=0.3).until(condition)
    except TimeoutException:
        raise AssertionError(f"timed out waiting for {what}") from None


def _button(drv: object, text: str) -> object:
    from selenium.webdriver.common.by import By

    return _wait(
        drv,
        lambda d: next((b for b in d.find_elements(By.XPATH, f"//button[normalize-space(.)='{text}']")), False),
        f"button {text!r}",
    )


def _viewer_atoms(drv: object) -> int:
    """Atoms in the 3Dmol viewer of the current frame, once it holds a model (waits for it)."""
    return _wait(
        drv,
        lambda d: d.execute_script(
            "const v = window[window.proteinDidiViewer];"
            "return v && v.getModel() ? v.getModel().selectedAtoms({}).length : 0;"
        ),
        "3Dmol viewer with a model",
    )


def _pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)


def test_generate_then_view_structure(server: str, driver: object, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    drv = driver
    drv.get(server)
    _button(drv, "Generate").click()

    def fasta(d: object) -> str | bool:
        for block in d.find_elements(By.CSS_SELECTOR, "[data-testid='stCode'] code"):
            if block.text.startswith(">"):
                return block.text
        return False

    text = _wait(drv, fasta, "generated sequences")
    drv.save_screenshot(str(tmp_path / "generate.png"))
    lines = text.splitlines()
    headers, seqs = lines[0::2], lines[1::2]
    assert len(headers) == len(seqs) == 4, text  # the default batch: 4 sequences × 100 residues
    assert all(h.startswith(">") for h in headers)
    assert all(re.fullmatch(r"[ACDEFGHIKLMNPQRSTVWY]{100}", s) for s in seqs), seqs

    tab = _wait(drv, lambda d: d.find_elements(By.XPATH, "//*[@role='tab'][normalize-space(.)='Structure']"), "tab")
    tab[0].click()
    radio = _wait(
        drv, lambda d: d.find_elements(By.XPATH, "//label[normalize-space(.)='Upload a PDB file']"), "upload option"
    )
    radio[0].click()
    upload = _wait(drv, lambda d: d.find_elements(By.CSS_SELECTOR, "input[type='file']"), "file input")
    upload[0].send_keys(str(helix_pdb(tmp_path / "helix.pdb")))

    frame = _wait(
        drv,
        lambda d: next(
            (f for f in d.find_elements(By.TAG_NAME, "iframe") if "3D structure" in f.get_attribute("title")), False
        ),
        "structure viewer",
    )
    drv.execute_script("arguments[0].scrollIntoView({block: 'center'});", frame)
    drv.switch_to.frame(frame)
    try:
        atoms = _viewer_atoms(drv)
        assert atoms == 160
        assert drv.execute_script("return document.querySelectorAll('canvas').length") >= 1
        # read the WebGL canvas back through 3Dmol (renders, then toDataURL)
        uri = drv.execute_script("return window[window.proteinDidiViewer].pngURI();")
    finally:
        drv.switch_to.default_content()
    canvas = _pixels(base64.b64decode(uri.split(",", 1)[1]))
    (tmp_path / "canvas.png").write_bytes(base64.b64decode(uri.split(",", 1)[1]))
    shot = _pixels(frame.screenshot_as_png)
    drv.save_screenshot(str(tmp_path / "structure.png"))

    for img in (canvas, shot):
        drawn = (img < 235).any(axis=-1)  # the background is white
        assert drawn.mean() > 0.005, f"viewer looks blank ({drawn.mean():.4%} drawn); see {tmp_path}"
        assert img.std() > 5
    # the pLDDT colouring is visible: blue (very high / confident) and orange/yellow (low / very low) pixels
    r, b = canvas[..., 0], canvas[..., 2]
    assert ((b > r + 60) & (b > 80)).sum() > 50, f"no blue (high pLDDT) pixels; see {tmp_path}"
    assert ((r > b + 60) & (r > 120)).sum() > 50, f"no orange/yellow (low pLDDT) pixels; see {tmp_path}"


@pytest.fixture(scope="module")
def report_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report with every figure: two NFE-labelled sets (one holding a > 1022-residue protein), tiny ESMFold."""
    import itertools

    import torch

    from protein_didi import report
    from protein_didi.fold.esmfold import Folder
    from protein_didi.fold.testing import tiny_esmfold
    from protein_didi.protein.fasta import iter_fasta, write_fasta

    db = Path("/usr/share/doc/mmseqs2/example-data/DB.fasta.gz")
    if shutil.which("mmseqs") is None or not db.is_file():
        pytest.skip("needs mmseqs2 and mmseqs2-examples")
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("report-page")
    seqs = [s for _, s in itertools.islice(iter_fasta(db), 400) if len(s) >= 80]
    long = next(s for _, s in iter_fasta(db) if len(s) > 1100)
    a = write_fasta(root / "a.fasta", [(f"teacher_sample_{i}", s[:60]) for i, s in enumerate(seqs[:4])])
    b = write_fasta(root / "b.fasta", [(f"b{i}", s[:80]) for i, s in enumerate(seqs[4:7])] + [("long_one", long)])
    train = write_fasta(root / "train.fasta", [(f"t{i}", s) for i, s in enumerate(seqs[:30])])  # small: fast search
    folder = Folder.from_model(tiny_esmfold(), cache_path=root / "folds.sqlite")
    argv = ["--fasta", str(a), str(b), "--labels", "teacher-8,student-8", "--out", str(root / "out"), "--threads", "1"]
    # short natural references: the shipped sample would match a ~1,000-residue protein to the long one, and folding
    # it with ESMFold on one CPU thread takes many minutes
    refs = write_fasta(root / "refs.fasta", [(f"r{i}", s[:120]) for i, s in enumerate(seqs[30:50])])
    argv += ["--train", str(train), "--reference", str(refs)]
    assert report.main(argv, folder=folder) == 0
    return root / "out" / "report.html"


@pytest.mark.parametrize("width", [1400, 1024])
def test_report_page_fits_laptop_width_and_print(report_page: Path, driver: object, tmp_path: Path, width: int) -> None:
    """No horizontal scroll on screen or in print (A4), every figure decoded, no raw None/NaN/<NA> in the text."""
    drv = driver
    drv.set_window_size(width, 900)
    drv.get(report_page.as_uri())
    drv.execute_script("document.querySelectorAll('details').forEach(d => d.open = true)")
    scroll = "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    page_w, view_w = drv.execute_script(scroll)
    drv.save_screenshot(str(tmp_path / f"report-{width}.png"))
    assert page_w <= view_w, f"horizontal scroll at {width} px: page {page_w} px > {view_w} px; see {tmp_path}"
    images = drv.execute_script(
        "return [...document.images].map(i => [i.complete, i.naturalWidth, i.getBoundingClientRect().width])"
    )
    assert len(images) >= 4, images  # pLDDT distribution, pLDDT vs NFE, judge vs NFE, composition
    assert all(done and natural > 0 and shown > 100 for done, natural, shown in images), images
    text = drv.execute_script("return document.body.innerText")
    for raw in ("None", "<NA>", "NaN", "nan"):
        assert not re.search(rf"(?<![\w-]){re.escape(raw)}(?![\w-])", text), f"raw {raw!r} in the page"
    assert "longer than 1022 residues" in text and "no hit" in text
    # print: A4 at 96 dpi minus 12 mm margins ≈ 703 px of content
    drv.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    drv.set_window_size(703, 900)
    page_w, view_w = drv.execute_script(scroll)
    assert page_w <= view_w, f"print layout overflows: {page_w} px > {view_w} px"
    drv.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})

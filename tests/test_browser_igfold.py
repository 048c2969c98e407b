"""The app's IgFold view in headless Chromium: paste trastuzumab VH, fold it, see a drawn structure in its colours.

Same browser set-up as ``test_browser.py``; skipped without chromium/chromedriver or the igfold extra. The app
runs with an empty cache of its own (so the chain is really folded) and one IgFold ensemble member (speed).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import test_browser
from test_browser import WAIT, _button, _pixels, _viewer_atoms, _wait, driver  # noqa: F401 (driver is a fixture)

pytest.importorskip("igfold")
pytestmark = test_browser.pytestmark  # slow; skipped without chromium and chromedriver


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``test_browser``'s streamlit server, started with a fresh app cache and ``PROTEIN_DIDI_IGFOLD_MODELS=1``."""
    from protein_didi.protein.antiberty_weights import AntibertyWeightsMissing, resolve_antiberty_weights

    try:
        weights = resolve_antiberty_weights()
    except AntibertyWeightsMissing as err:
        pytest.skip(str(err))
    env = {
        "PROTEIN_DIDI_CACHE": str(tmp_path_factory.mktemp("app-cache")),
        "ANTIBERTY_WEIGHTS_DIR": str(weights.folder),  # found without the (now empty) project cache
        "PROTEIN_DIDI_IGFOLD_MODELS": "1",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the server inherits the environment at start-up
    try:
        yield from test_browser.server.__wrapped__(tmp_path_factory)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


HEAVY = (
    "EVQLVESGGGLVQPGGSLRLSCAASGFNIKDTYIHWVRQAPGKGLEWVARIYPTNGYTRYADSVKGRFTISADTSKNTAYLQMNSLRAEDTAVYYCSRWGGDGFYAMDYW"
    "GQGTLVTVSS"
)


def test_igfold_view_draws_the_antibody_by_predicted_error(server: str, driver: object, tmp_path: Path) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    drv = driver
    drv.get(server)
    tab = _wait(drv, lambda d: d.find_elements(By.XPATH, "//*[@role='tab'][normalize-space(.)='Structure']"), "tab")
    tab[0].click()
    option = "//label[normalize-space(.)='Fold an antibody (IgFold)']"
    _wait(drv, lambda d: d.find_elements(By.XPATH, option), "IgFold option")[0].click()
    box = "//textarea[@aria-label='Heavy or light chain V domain']"
    area = _wait(drv, lambda d: [e for e in d.find_elements(By.XPATH, box) if e.is_displayed()], "sequence box")[0]
    area.send_keys(HEAVY)
    area.send_keys(Keys.CONTROL, Keys.ENTER)  # commit the text before the button press
    _wait(drv, lambda d: HEAVY in d.find_element(By.XPATH, box).get_attribute("value"), "pasted text")
    _button(drv, "Fold with IgFold").click()
    frame = _wait(
        drv,
        lambda d: next(
            (f for f in d.find_elements(By.TAG_NAME, "iframe") if "3D structure" in f.get_attribute("title")), False
        ),
        "IgFold structure viewer",
        timeout=2 * WAIT,  # loading IgFold and AntiBERTy, folding one chain
    )
    drv.execute_script("arguments[0].scrollIntoView({block: 'center'});", frame)
    drv.switch_to.frame(frame)
    try:
        atoms = _viewer_atoms(drv)
        title = drv.execute_script("return document.querySelector('.title').innerText")
        uri = drv.execute_script("return window[window.proteinDidiViewer].pngURI();")
    finally:
        drv.switch_to.default_content()
    assert atoms == 5 * len(HEAVY) - HEAVY.count("G")  # N, CA, C, CB, O; glycines have no CB
    assert "heavy chain" in title and "mean pRMSD 0." in title  # a natural VH: well under 1 Å
    png = base64.b64decode(uri.split(",", 1)[1])
    (tmp_path / "igfold.png").write_bytes(png)
    drv.save_screenshot(str(tmp_path / "igfold-page.png"))
    canvas, shot = _pixels(png), _pixels(frame.screenshot_as_png)
    for img in (canvas, shot):
        drawn = (img < 235).any(axis=-1)
        assert drawn.mean() > 0.005, f"viewer looks blank ({drawn.mean():.4%} drawn); see {tmp_path}"
    r, g, b = canvas[..., 0], canvas[..., 1], canvas[..., 2]
    assert ((b > r + 60) & (b > 80)).sum() > 200, f"no blue (confident) residues drawn; see {tmp_path}"
    magenta = (r > 150) & (b > 90) & (g < 90)
    assert magenta.sum() > 20, f"no magenta CDR markers drawn; see {tmp_path}"
    text = drv.find_element(By.TAG_NAME, "body").text
    assert "least certain: H3" in text and "Download PDB" in text
    assert np.isfinite(float(title.split("mean pRMSD ")[1].split(" Å")[0]))

"""report.html from a finished study folder: self-contained, escaped, with every table, and drawn by
real headless Chromium from disk with no console error and no network request.

The browser tests drive Debian's Chromium and chromedriver (`apt-get install -y chromium
chromium-driver`) the way tests/serve/test_serve_browser.py does: skipped when they are missing,
failed instead when AIDENTIFY_REQUIRE_CHROMIUM=1 (as .ci/run sets). Set
AIDENTIFY_REPORT_SCREENSHOT=PATH to keep the screenshot (docs/analyze-report.png is one).
"""

from __future__ import annotations

import base64
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest
from chromium import chromium, requested_urls
from chromium import wait_for as wait_until
from report_study import make_study

from aidentify.analyze import report as report_module
from aidentify.analyze.report import choose_respondents, stimulus_thumbnails, write_report
from aidentify.errors import DataError, StageInputMissing
from aidentify.live.demo import write_demo_video

XSS = "<script>alert(1)</script>"
IMG_XSS = "<img src=x onerror=window.pwned=1>"


class Loads(HTMLParser):
    """Every tag's src/href and the number of <script> elements (script bodies are not parsed as tags)."""

    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        self.scripts += tag == "script"
        self.links += [value or "" for name, value in attrs if name in ("src", "href")]


def jpeg_count(page: str) -> int:
    """JPEG data URIs in the page (Plotly's figure JSON writes ``/`` as ``\\u002f``)."""
    return len(re.findall(r"data:image(?:/|\\u002f)jpeg;base64,", page))


def names_with_xss(count: int) -> list[str]:
    names = [f"p{index + 1:02d}" for index in range(count)]
    names[2], names[5] = XSS, IMG_XSS
    return names


@pytest.fixture(scope="module")
def stimulus(tmp_path_factory) -> Path:
    """A 30-s stimulus made of shipped real photos (the demo scene: the camera pans over people)."""
    return write_demo_video(tmp_path_factory.mktemp("stimulus") / "ad.mp4", faces=3, seconds=30.0, fps=5.0,
                            size=(320, 240))


@pytest.fixture(scope="module")
def study(tmp_path_factory, stimulus) -> Path:
    folder = make_study(tmp_path_factory.mktemp("study") / "ad-test", respondents=10, stimulus=stimulus,
                        names=names_with_xss(10))
    write_report(folder)
    return folder


def test_study_report_is_one_self_contained_page(study):
    page = (study / "report.html").read_text(encoding="utf-8")
    loads = Loads()
    loads.feed(page)
    remote = [link for link in loads.links if link.lower().startswith(("http:", "https:", "//"))]
    assert remote == []
    assert "<link" not in page  # no stylesheet or icon to fetch
    assert report_module.charts.plotly_js()[:500] in page  # the library itself is inlined
    assert loads.scripts == 1 + 3  # plotly.js, then one script per chart: nothing from the data became a script
    assert jpeg_count(page) == 2 * 12  # the stimulus strip under both time charts


def test_study_report_escapes_names_from_the_data(study):
    page = (study / "report.html").read_text(encoding="utf-8")
    assert XSS not in page and IMG_XSS not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # shown as text in the data-quality table
    assert "&lt;img src=x onerror=window.pwned=1&gt;" in page


def test_study_report_has_the_tables_and_notes(study):
    page = (study / "report.html").read_text(encoding="utf-8")
    assert "10 of 10 respondents shown" in page
    assert "uncalibrated proxies" in page
    assert "cannot open the video (moov atom not found)" in page  # failed.csv
    for table in ('id="groups"', 'id="segments"', 'id="quality"', 'id="failed"'):
        assert table in page
    assert page.count("<td>joke <span") == 10  # one row per metric of the segment
    assert "group B: mean [95% CI]" in page


def test_study_report_caps_the_small_charts_and_says_so(tmp_path):
    folder = make_study(tmp_path / "study", respondents=12, failed=0)
    out = write_report(folder, tmp_path / "out" / "small.html", respondents=4)
    page = out.read_text(encoding="utf-8")
    assert out == tmp_path / "out" / "small.html" and not (folder / "report.html").exists()
    assert "4 of 12 respondents shown" in page
    assert "None: every recording was analysed." in page
    assert 'id="stimulus-note"' not in page and jpeg_count(page) == 0  # no stimulus: no strip, no note


def test_study_report_says_when_the_stimulus_is_gone(tmp_path):
    folder = make_study(tmp_path / "study", respondents=4, stimulus=tmp_path / "deleted.mp4")
    page = write_report(folder).read_text(encoding="utf-8")
    assert f"The stimulus video {tmp_path / 'deleted.mp4'} is not there any more" in page
    assert jpeg_count(page) == 0


def test_study_report_refuses_an_unfinished_study(tmp_path):
    with pytest.raises(StageInputMissing, match="no study.json"):
        write_report(tmp_path)
    folder = make_study(tmp_path / "study", respondents=4)
    (folder / "aggregate.csv").unlink()
    with pytest.raises(StageInputMissing, match="aggregate.csv is missing"):
        write_report(folder)
    assert not (folder / "report.html").exists()


def test_study_report_chooses_respondents_with_most_face_epochs_in_chunks(tmp_path, monkeypatch):
    rows = ["respondent,group,time_s,face_share,valence,expressiveness"]
    faces = {"NA": 3, "007": 2, "b": 3, "a": 1}  # epochs with a face; "NA" and "007" must stay names
    for name, with_face in faces.items():
        rows += [f"{name},A,{t + 0.5},{1 if t < with_face else 0},{0.1 if t < with_face else ''},"
                 f"{0.2 if t < with_face else ''}" for t in range(3)]
    (tmp_path / "epochs.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    monkeypatch.setattr(report_module, "CHUNK_ROWS", 5)  # several chunks, names split across them
    assert choose_respondents(tmp_path / "epochs.csv", 3) == (["NA", "b", "007"], 4)


def test_stimulus_thumbnails_are_frames_at_their_times(tmp_path, stimulus):
    thumbnails = stimulus_thumbnails(stimulus, [0.5, 20.5, 29.9, 30.5], height_px=48)
    assert [time_s for time_s, _ in thumbnails] == [0.5, 20.5, 29.9]  # 30.5 s is past the end
    images = [cv2.imdecode(np.frombuffer(base64.b64decode(uri.split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
              for _, uri in thumbnails]
    assert all(image.shape == (48, 64, 3) for image in images)
    assert np.abs(images[0].astype(int) - images[1].astype(int)).mean() > 5  # the camera moved


@pytest.fixture(scope="module")
def report_browser():
    """Headless Chromium that can resolve no host name, logging the console and every network event."""
    with chromium("--window-size=1280,1700", "--host-resolver-rules=MAP * ~NOTFOUND", logs=True) as driver:
        yield driver


def wait_for(driver, script: str, timeout: float = 20.0):
    return wait_until(driver, script, timeout)


def test_study_report_renders_in_chromium_offline(report_browser, study, tmp_path):
    driver = report_browser
    driver.get_log("performance")  # drop what the blank start page logged
    driver.get((study / "report.html").as_uri())
    counts = wait_for(driver, "document.querySelectorAll('.js-plotly-plot .main-svg').length >= 6 && "
                              "Array.from(document.querySelectorAll('.js-plotly-plot'))"
                              ".map(p => p.querySelectorAll('.scatterlayer path').length)")
    assert len(counts) == 3 and all(count > 10 for count in counts)  # the curves, bands and small charts are drawn
    strip = driver.execute_script("return Array.from(document.querySelectorAll('#chart-valence image'))"
                                  ".map(i => i.getAttribute('href').slice(0, 23))")
    assert strip == ["data:image/jpeg;base64,"] * 12
    titles = driver.execute_script("return Array.from(document.querySelectorAll('#chart-respondents .annotation'))"
                                   ".map(a => a.textContent)")
    assert any(title.startswith(XSS + " (") for title in titles)  # the name shows as text...
    assert driver.execute_script("return window.pwned") is None  # ...and none ran
    errors = [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
    assert errors == []
    urls = requested_urls(driver)
    assert urls and all(url.startswith(("file:", "data:")) for url in urls), urls
    entries = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert all(name.startswith(("file:", "data:")) for name in entries), entries
    screenshot = tmp_path / "report.png"
    driver.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 50_000
    if os.environ.get("AIDENTIFY_REPORT_SCREENSHOT"):
        shutil.copy(screenshot, os.environ["AIDENTIFY_REPORT_SCREENSHOT"])


def test_study_report_hover_shows_the_values(report_browser, study):
    from selenium.webdriver.common.action_chains import ActionChains

    driver = report_browser
    if not driver.current_url.endswith("report.html"):
        driver.get((study / "report.html").as_uri())
    wait_for(driver, "document.querySelectorAll('#chart-valence .nsewdrag').length")
    area = driver.find_element("css selector", "#chart-valence .nsewdrag")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", area)
    ActionChains(driver).move_to_element_with_offset(area, 0, 0).perform()  # the middle of the valence plot
    text = wait_for(driver, "document.querySelector('#chart-valence .hoverlayer').textContent")
    assert "all respondents" in text and "group B" in text
    assert re.search(r"all respondents : -?\d\.\d{3} \[-?\d\.\d{3}, -?\d\.\d{3}\] n=\d+", text), text  # mean [CI] n


def test_study_report_without_segments_groups_or_moments(tmp_path):
    folder = make_study(tmp_path / "study", respondents=4, failed=0)
    for name, header in (("segment_summary.csv", "group,segment,metric,mean,ci_low,ci_high,n,p_value"),
                         ("moments.csv", "group,metric,time_s,change")):
        (folder / name).write_text(header + "\n", encoding="utf-8")
    aggregate = (folder / "aggregate.csv").read_text(encoding="utf-8").splitlines()
    (folder / "aggregate.csv").write_text("\n".join(row for row in aggregate if not row.startswith(("A,", "B,"))),
                                          encoding="utf-8")
    page = write_report(folder).read_text(encoding="utf-8")
    assert "No segments were given for this study." in page
    charts = page.split("</script>", 1)[1]  # after plotly.js: the figures and tables
    assert "Plotly.newPlot" in charts and "updatemenus" not in charts  # one group: no menu to switch groups
    assert page.count("<tr><td>") >= 1 and "group B" not in page


def test_study_report_menu_switches_the_emotions_to_a_group(report_browser, study):
    driver = report_browser
    driver.get((study / "report.html").as_uri())
    wait_for(driver, "document.querySelectorAll('#chart-emotions .updatemenu-header-group').length")
    shown = ("return document.getElementById('chart-emotions').data"
             ".flatMap((t, i) => t.visible === true ? [i] : [])")
    before = driver.execute_script(shown)
    driver.find_element("css selector", "#chart-emotions .updatemenu-header-group").click()
    items = wait_for(driver, "document.querySelectorAll('#chart-emotions .updatemenu-dropdown-button').length")
    assert items == 3  # all respondents, group A, group B
    driver.find_elements("css selector", "#chart-emotions .updatemenu-dropdown-button")[2].click()
    after = driver.execute_script(shown)
    assert len(after) == len(before) and min(after) > max(before)  # group B's curves replace all respondents'


def test_study_report_names_a_missing_column(tmp_path):
    folder = make_study(tmp_path / "study", respondents=4)
    (folder / "moments.csv").write_text("group,metric,when\nall,valence,3.5\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"moments.csv has no column time_s, change"):
        write_report(folder)

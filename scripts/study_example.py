"""Build the example study of docs/analyze.md and the README, analyse it, and screenshot its report.

Eight respondents in two groups watch a 20-s stimulus (the demo scene, `aidentify.live.demo`). Each
recording is 640x480 at 30 frames/s and starts 0.5-3 s before the stimulus: a real face in front of
scikit-learn's Summer Palace photo, neutral (matplotlib's Grace Hopper) or smiling (scikit-image's
astronaut) on a known schedule: group "ad-A" turns from neutral to smiling at 8 s, group "ad-B" stays
neutral until 14 s; one respondent looks away (no face) from 11 to 13 s. Nothing is downloaded.

    .venv/bin/python scripts/study_example.py /tmp/example            # data, then `aidentify analyze`
    .venv/bin/python scripts/study_example.py /tmp/example --screenshot docs/analyze-report.png
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

SIZE, FPS = (640, 480), 30.0
STIMULUS_S = 20.0
# name, group, offset_s, [(stimulus time, label or None)]
PEOPLE = [
    ("p01", "ad-A", 1.0, [(0, "neutral"), (8, "happiness")]),
    ("p02", "ad-A", 2.5, [(0, "neutral"), (8, "happiness")]),
    ("p03", "ad-A", 0.5, [(0, "neutral"), (8, "happiness"), (11, None), (13, "happiness")]),
    ("p04", "ad-A", 3.0, [(0, "neutral"), (9, "happiness")]),
    ("p05", "ad-B", 1.5, [(0, "neutral"), (14, "happiness")]),
    ("p06", "ad-B", 2.0, [(0, "neutral"), (14, "happiness")]),
    ("p07", "ad-B", 0.5, [(0, "neutral")]),
    ("p08", "ad-B", 1.0, [(0, "neutral"), (15, "happiness")]),
]


def write_recording(path: Path, offset_s: float, schedule, heads, background) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, SIZE)
    for i in range(int((offset_s + STIMULUS_S) * FPS)):
        t = max(i / FPS - offset_s, 0.0)
        label = [lab for start, lab in schedule if t >= start][-1]
        frame = background.copy()
        if label is not None:
            head = heads[label]
            x = 220 + int(25 * np.sin(i / 40))
            frame[120:120 + head.shape[0], x:x + head.shape[1]] = head
        writer.write(frame)
    writer.release()


def build(folder: Path) -> None:
    from sklearn.datasets import load_sample_image

    from aidentify.faces.samples import expression_portraits
    from aidentify.live.demo import write_demo_video

    folder.mkdir(parents=True, exist_ok=True)
    background = cv2.cvtColor(load_sample_image("china.jpg"), cv2.COLOR_RGB2BGR)
    background = cv2.GaussianBlur(cv2.resize(background, SIZE), (15, 15), 0)
    heads = expression_portraits(220)
    rows = []
    for name, group, offset, schedule in PEOPLE:
        write_recording(folder / f"{name}.avi", offset, schedule, heads, background)
        rows.append([f"{name}.avi", name, offset, group])
    with open(folder / "respondents.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["recording", "respondent", "offset_s", "group"])
        writer.writerows(rows)
    (folder / "segments.csv").write_text("name,start_s,end_s\nopening,0,8\nproduct,8,14\nending,14,20\n")
    write_demo_video(folder / "ad.mp4", faces=4, seconds=STIMULUS_S)


def screenshot(report: Path, png: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1500",
                     "--disable-background-networking", "--host-resolver-rules=MAP * ~NOTFOUND"):
        options.add_argument(argument)
    options.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(report.resolve().as_uri())
        driver.implicitly_wait(5)
        driver.find_element("css selector", ".plot-container svg")
        driver.save_screenshot(str(png))
    finally:
        driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--screenshot", type=Path)
    args = parser.parse_args()
    build(args.folder)
    out = args.folder / "study"
    subprocess.run([sys.executable, "-m", "aidentify", "analyze", "--respondents", str(args.folder / "respondents.csv"),
                    "--segments", str(args.folder / "segments.csv"), "--stimulus", str(args.folder / "ad.mp4"),
                    "--out", str(out)], check=True)
    if args.screenshot:
        screenshot(out / "report.html", args.screenshot)


if __name__ == "__main__":
    main()

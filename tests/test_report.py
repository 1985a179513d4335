"""The HTML run report, its refresh during training, TensorBoard logging, and the page in a real browser."""

import json
import logging
import re
import shutil
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge.report import MAX_FRAMES, MAX_POINTS, render_report, write_report
from ganforge.run import Run
from ganforge.training import callbacks
from ganforge.training.callbacks import Callback

from .helpers import assert_one_line_error, run_cli, tiny_config

TRAIN_CHARTS = ("losses", "d_outputs", "diversity", "speed")


class Page(HTMLParser):
    """The parts of a report the tests look at: charts (with their polylines' point counts), images, links."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.charts: list[dict] = []
        self.images: list[dict] = []
        self.urls: list[str] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]
        if tag == "svg" and "chart" in a.get("class", ""):
            self.charts.append({**a, "polylines": []})
        elif tag == "polyline":
            self.charts[-1]["polylines"].append(len(a["points"].split()))
        elif tag == "img":
            self.images.append(a)

    def handle_data(self, data):
        self.text.append(data)

    def chart(self, name, axis="step"):
        return next(c for c in self.charts if c["data-chart"] == name and c["data-axis"] == axis)


def rows_of(run: Path) -> tuple[list[dict], list[dict]]:
    run = Run.open(run)
    return run.training_rows(), run.evaluation_rows()


@pytest.fixture(scope="module")
def features_file(tmp_path_factory) -> Path:
    """Evaluation features that need no training and no download: a fixed random projection of the pixels."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("features") / "features.pt"
    torch.jit.save(torch.jit.script(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 6))), str(path))
    return path


@pytest.fixture(scope="module")
def cond_run(tmp_path_factory, features_file) -> Path:
    """A conditional run with evaluations during training: every section of the report has something."""
    tmp = tmp_path_factory.mktemp("report")
    cfg = tiny_config(tmp, conditional=True, eval_every=3, eval_n=100, eval_metrics=["fid", "pr"],
                      eval_features=str(features_file))
    return ganforge.train(cfg, progress=False).path


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory) -> Path:
    return ganforge.train(tiny_config(tmp_path_factory.mktemp("plain")), progress=False).path


def test_the_report_shows_the_whole_run(cond_run):
    html = (cond_run / "report.html").read_text()
    page = Page(html)
    text = " ".join(page.text)
    # Self-contained: nothing fetched from elsewhere, every image inline.
    assert not [u for u in page.urls if re.match(r"(https?:)?//", u)]
    assert "<link" not in html and "<script src" not in html
    assert all(img["src"].startswith("data:image/png;base64,") for img in page.images)
    # Config and hardware.
    assert "ngf" in text and "digits" in text and "cpu_cores" in text and torch.__version__ in text
    # One point per metrics.jsonl row on every training curve, against step and against seconds.
    train_rows, eval_rows = rows_of(cond_run)
    for name in TRAIN_CHARTS:
        for axis in ("step", "seconds"):
            chart = page.chart(name, axis)
            assert int(chart["data-points"]) == len(train_rows)
            assert chart["polylines"] and all(n == len(train_rows) for n in chart["polylines"])
    # Evaluations: a chart per metric, best.pt's step marked and named.
    assert [r["step"] for r in eval_rows] == [3, 6]
    assert int(page.chart("eval-fid")["data-points"]) == 2 and page.chart("eval-pr")["polylines"] == [2, 2]
    best = min(eval_rows, key=lambda r: r["fid"])["step"]
    assert f"checkpoints/best.pt is step {best} (best fid)" in text
    assert html.count('class="best"') == len([c for c in page.charts if c["data-chart"].startswith("eval-")])
    # Samples slider over every grid, the final grid and the class sweep of a conditional run.
    frames = json.loads(re.search(r'<script type="application/json" id="sample-data">(.*?)</script>', html).group(1))
    assert [f["step"] for f in frames] == [3, 6]
    assert {"final samples", "class sweep"} <= {img["alt"] for img in page.images}


def test_an_unconditional_run_has_no_sweep(plain_run):
    page = Page((plain_run / "report.html").read_text())
    alts = {img["alt"] for img in page.images}
    assert "final samples" in alts and "class sweep" not in alts
    assert "No evaluations yet: turn it on with --eval-every N" in " ".join(page.text)


class ReportWatch(Callback):
    """After every checkpoint and at the end: which checkpoint the page on disk shows, and whether it shows the
    final generator (it runs after the built-in callbacks, so it sees what their refresh wrote)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, bool]] = []
        self.mtime = 0.0

    def look(self, trainer) -> None:
        report = trainer.run.report
        if report.is_file() and report.stat().st_mtime_ns != self.mtime:
            self.mtime = report.stat().st_mtime_ns
            ckpts = sorted(p.name for p in trainer.run.checkpoints.glob("step-*.pt"))
            self.seen.append((ckpts[-1], "is written when training ends" not in report.read_text()))

    on_checkpoint = on_end = look


def test_training_refreshes_the_report_at_checkpoints_and_at_the_end(tmp_path, monkeypatch):
    monkeypatch.setattr(callbacks, "REPORT_SHARE", float("inf"))  # every checkpoint, however fast
    watch = ReportWatch()
    ganforge.train(tiny_config(tmp_path), progress=False, callbacks=[watch])
    assert watch.seen == [("step-00000003.pt", False), ("step-00000006.pt", False), ("step-00000006.pt", True)]

    # A refresh that costs more than its share of the time since the last one waits; the final one never does.
    monkeypatch.setattr(callbacks, "REPORT_SHARE", 1e-12)
    watch = ReportWatch()
    ganforge.train(tiny_config(tmp_path / "b"), progress=False, callbacks=[watch])
    assert watch.seen == [("step-00000003.pt", False), ("step-00000006.pt", True)]


def test_a_failing_report_does_not_stop_training(tmp_path, monkeypatch, caplog):
    def broken(run, out=None):
        raise OSError("disk full")

    monkeypatch.setattr(callbacks, "write_report", broken)
    with caplog.at_level(logging.WARNING, logger="ganforge"):
        run = ganforge.train(tiny_config(tmp_path), progress=False)
    assert run.step == 6 and "could not write" in caplog.text and "disk full" in caplog.text


def test_hardware_is_recorded_per_start_and_resume(tmp_path):
    run = ganforge.train(tiny_config(tmp_path, steps=3), progress=False)
    ganforge.train(tiny_config(tmp_path, steps=6), resume=run.path, progress=False)
    entries = json.loads((run.path / "hardware.json").read_text())
    assert [e["from_step"] for e in entries] == [0, 3]
    assert entries[0]["device"] == "cpu" and entries[0]["torch"] == torch.__version__ and entries[0]["cpu_cores"] >= 1
    assert "from step 3" in render_report(run)


def test_a_run_without_rows_or_samples_yet(tmp_path):
    run = Run.create(tiny_config(tmp_path))
    html = write_report(run).read_text()
    assert "No metrics.jsonl rows yet" in html and "No sample grids yet" in html
    assert "is written when training ends" in html and "training writes hardware.json with its first report" in html


def test_a_damaged_generator_file_is_named_on_the_page(tmp_path, plain_run):
    run = tmp_path / "copy"
    shutil.copytree(plain_run, run)
    (run / "generator.safetensors").write_bytes(b"junk")
    html = render_report(Run.open(run))
    assert "generator.safetensors: cannot read generator weights" in html and 'id="sample-data"' in html


def test_text_is_escaped_and_torn_lines_skipped(tmp_path):
    run = Run.create(tiny_config(tmp_path))
    row = dict(step=600, seconds=1.0, img_per_s=10.0, loss_d=1.0, loss_g=1.0, d_real=0.5, d_fake=0.5, diversity=0.2,
               alarm="<script>alert(1)</script>")
    run.metrics.write_text(json.dumps(row) + "\n" + json.dumps({**row, "step": 650}) + '\n{"step": 700, "los')
    html = render_report(run)
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'data-points="2"' in html and "steps 600–650" in html


def test_d_outputs_are_drawn_on_their_own_scale_beyond_bce(tmp_path):
    """BCE logs D's outputs as probabilities (a 0-1 axis); hinge logs raw critic values, here negative."""
    row = dict(step=600, seconds=1.0, img_per_s=10.0, loss_d=1.0, loss_g=1.0, d_real=0.6, d_fake=-0.8, diversity=1.0)
    ticks = {}
    for loss in ("bce", "hinge"):
        run = Run.create(tiny_config(tmp_path / loss, loss=loss))
        run.metrics.write_text(json.dumps(row) + "\n" + json.dumps({**row, "step": 650, "d_fake": -0.9}) + "\n")
        svg = re.search(r'<svg class="chart"[^>]*data-chart="d_outputs" data-axis="step".*?</svg>',
                        render_report(run), re.S).group(0)
        ticks[loss] = [float(t) for t in re.findall(r'class="ytick">([^<]+)<', svg)]
    assert min(ticks["bce"]) == 0 and max(ticks["bce"]) == 1
    assert min(ticks["hinge"]) < 0 < max(ticks["hinge"])  # the axis reaches down to the negative values


def test_long_runs_are_subsampled_and_say_so(tmp_path):
    run = Run.create(tiny_config(tmp_path))
    n_rows = MAX_POINTS + 500
    rows = (dict(step=i, seconds=i / 10, img_per_s=100.0, loss_d=1.0, loss_g=float(i), d_real=0.5, d_fake=0.5,
                 diversity=1.0) for i in range(1, n_rows + 1))
    run.metrics.write_text("".join(json.dumps(r) + "\n" for r in rows))
    grid = np.zeros((8, 8), np.uint8)
    for step in range(1, MAX_FRAMES + 41):
        Image.fromarray(grid + step).save(run.samples / f"step-{step:08d}.png")
    html = render_report(run)
    page = Page(html)
    assert int(page.chart("losses")["data-points"]) == MAX_POINTS
    assert f"{n_rows} rows, drawn as {MAX_POINTS} evenly spaced points" in html
    assert f"Showing {MAX_FRAMES} of {MAX_FRAMES + 40} grids" in html
    frames = json.loads(re.search(r'id="sample-data">(.*?)</script>', html).group(1))
    assert len(frames) == MAX_FRAMES and frames[0]["step"] == 1 and frames[-1]["step"] == MAX_FRAMES + 40


def test_report_cli(capsys, tmp_path, plain_run):
    run = tmp_path / "copy"
    shutil.copytree(plain_run, run)
    (run / "report.html").unlink()
    code, _, err = run_cli(capsys, "report", str(run))
    assert code == 0 and (run / "report.html").is_file() and "report.html" in err
    code, _, _ = run_cli(capsys, "report", str(run), "--out", str(tmp_path / "elsewhere" / "r.html"))
    assert code == 0 and (tmp_path / "elsewhere" / "r.html").is_file()
    # metrics.json and probe.json, when present, are shown.
    (run / "probe.json").write_text(json.dumps({"step": 6, "discriminator": {"accuracy": 0.875}}))
    (run / "metrics.json").write_text(json.dumps({"classifier": {"fid": 12.5, "n": 200}}))
    run_cli(capsys, "report", str(run))
    text = " ".join(Page((run / "report.html").read_text()).text)
    assert "discriminator.accuracy" in text and "0.875" in text and "12.5" in text


@pytest.mark.parametrize(("args", "text"), [
    (["report", "/nonexistent/run"], "no such run directory"),
    (["report", "."], "not a ganforge run (no config.yaml)"),
])
def test_report_cli_bad_input(capsys, args, text):
    assert_one_line_error(*run_cli(capsys, *args)[::2], text)


# -- TensorBoard -------------------------------------------------------------------------------------------

def test_tensorboard_event_files(tmp_path, features_file):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = tiny_config(tmp_path, tensorboard=True, eval_every=3, eval_n=100, eval_metrics=["fid"],
                      eval_features=str(features_file))
    run = ganforge.train(cfg, progress=False).path
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    scalars = events.Tags()["scalars"]
    assert {"Loss/D", "Loss/G", "D/real", "D/fake", "Speed/img_per_s", "Metrics/fid"} <= set(scalars)
    train_rows, eval_rows = rows_of(run)
    loss_d = events.Scalars("Loss/D")
    assert [e.step for e in loss_d] == [r["step"] for r in train_rows]
    assert [e.value for e in loss_d] == pytest.approx([r["loss_d"] for r in train_rows])
    assert [e.value for e in events.Scalars("Metrics/fid")] == pytest.approx([r["fid"] for r in eval_rows])
    assert [e.step for e in events.Images("Samples")] == [3, 6]


def test_tensorboard_missing_is_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    code, _, err = run_cli(capsys, "train", "--out", str(tmp_path / "r"), "--steps", "1", "--tensorboard",
                           "--no-progress", "--device", "cpu")
    assert_one_line_error(code, err, 'pip install "ganforge[tensorboard]"')


# -- in a real browser ----------------------------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.mark.slow
def test_the_page_in_headless_chromium(cond_run, tmp_path):
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    train_rows, eval_rows = rows_of(cond_run)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: errors.append(f"fetched {r.url}") if not r.url.startswith(("file:", "data:"))
                    else None)
            page.goto((cond_run / "report.html").as_uri())
            page.wait_for_load_state("load")

            # Every chart's curves hold as many points as the browser parsed: one per row.
            counts = page.evaluate("""() => [...document.querySelectorAll('svg.chart')].map(s => ({
                chart: s.dataset.chart, axis: s.dataset.axis,
                points: [...s.querySelectorAll('polyline')].map(p => p.points.numberOfItems)}))""")
            assert {(c["chart"], c["axis"]) for c in counts} >= {(n, a) for n in TRAIN_CHARTS for a in ("step", "seconds")}
            for c in counts:
                expected = len(eval_rows) if c["chart"].startswith("eval-") else len(train_rows)
                assert c["points"] and all(n == expected for n in c["points"]), c

            # The step/seconds switch shows the other set of charts.
            visible = "() => [...document.querySelectorAll('svg.chart')].filter(s => s.getBoundingClientRect().width > 0).map(s => s.dataset.axis)"
            assert set(page.evaluate(visible)) == {"step"}
            page.click("button[data-set-axis=seconds]")
            assert set(page.evaluate(visible)) == {"seconds"}

            # The slider shows another grid.
            image = page.locator("#sample-img")
            last = image.get_attribute("src")
            page.focus("#sample-slider")
            page.keyboard.press("Home")
            assert image.get_attribute("src") != last and page.inner_text("#sample-step").startswith("step 3 ")
            assert page.evaluate("() => document.getElementById('sample-img').naturalWidth") > 0

            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert errors == []
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.std() > 20 and len(np.unique(pixels)) > 50  # text, charts and images, not a blank page

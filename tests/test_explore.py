"""ganforge explore: the HTTP API on a real server on 127.0.0.1, bad input, load, and the page in Chromium."""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge.latent import seed_latents

from .helpers import expect_error, run_cli, tiny_config

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

SRC = Path(ganforge.__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")


def start_server(run: Path, *args: str) -> tuple[subprocess.Popen, str]:
    """``ganforge explore RUN --port 0`` in its own process; returns it and the URL it printed."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "ganforge", "explore", str(run), "--port", "0", "--device", "cpu",
                             *args], stderr=subprocess.PIPE, text=True, env=env)
    for line in proc.stderr:
        if m := re.search(r"at (http://\S+/)", line):
            return proc, m.group(1)
    proc.wait(timeout=30)
    raise AssertionError(f"the server did not start (exit {proc.returncode})")


def stop(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)
    try:
        rest = proc.communicate(timeout=30)[1]
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return proc.returncode, rest


def get(url: str, data: bytes | None = None) -> tuple[int, bytes, str]:
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers.get("Content-Type", "")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("explore")
    cond = ganforge.train(tiny_config(root, steps=6, conditional=True, out=str(root / "cond")), progress=False)
    codes = ganforge.train(tiny_config(root, steps=6, model="mlp", codes=["cat:3", "cont:1"], out=str(root / "codes")),
                           progress=False)
    return {"cond": cond, "codes": codes}


@pytest.fixture(scope="module")
def server(runs):
    proc, url = start_server(runs["cond"].path)
    yield url
    stop(proc)


def test_info_grid_and_tiles_are_the_generator_s(server, runs):
    status, body, _ = get(server + "api/info")
    info = json.loads(body)
    assert status == 200 and info["family"] == "dcgan" and info["kind"] == "conditional" and info["classes"] == list(range(10))
    grid = json.loads(get(server + "api/grid?seed=5&n=12")[1])
    assert grid["tiles"][:3] == ["5~0", "6~1", "7~2"] and grid["columns"] == 10  # numbered as ganforge sample
    status, png, kind = get(server + "api/tile?t=7~2")
    assert status == 200 and kind == "image/png"
    g = runs["cond"].load_generator(device="cpu")
    want = ganforge.images.to_uint8(g.sample(1, labels=[2], z=seed_latents(g, [7])))[0, ..., 0]
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), want)


@pytest.mark.parametrize(("query", "reason"), [
    ("api/grid?seed=x", "seed: expected an integer, got 'x'"),
    ("api/grid?n=100000", "n: 100000 is out of range"),
    ("api/tile?t=5~42", "class 42 is out of range"),
    ("api/tile?t=5", "this generator draws a class: give one"),
    ("api/tile?t=5~3&psi=1.5", "psi: 1.5 is out of range (0..1)"),
    ("api/tile?t=5~3&psi=nan", "psi: nan is out of range"),
    ("api/tile?t=z.abc~3", "is not a latent (z. then base64 float32 values)"),
    ("api/tile?t=z.AAAAAA~3", "a latent of 1 finite values was given"),
    ("api/tile?t=/etc/passwd", "t: expected an integer"),
    ("api/tile?t=5~3&dirs=0,0,0,0,0,0,0,0,0,0,1", "dirs: at most 10 offsets"),
    ("api/tile?t=5~3&dirs=11", "dirs: 11 is out of range (-10..10)"),
    ("api/tile?t=5~3&layer=../../etc", "layer: '../../etc' is not one of this generator's layers"),
    ("api/tile?t=5~3&codes=0=1", "codes: this generator has no codes"),
    ("api/interpolate?t=1~2&frames=1", "frames: 1 is out of range"),
    ("api/interpolate?t=1~2&t=2~2&method=cubic", "method: 'cubic' is not one of slerp, lerp"),
    ("api/arithmetic?groups=*1,2&label=3", "groups: each group starts with + or -"),
    ("api/arithmetic?groups=%2B1,2", "label: this generator draws a class"),
    ("api/project/nope", "no projection 'nope'"),
])
def test_malformed_parameters_get_a_4xx_with_one_line(server, query, reason):
    status, body, _ = get(server + query)
    text = body.decode()
    assert status == 400 and reason in text and "\n" not in text.strip(), (status, text)


def test_no_request_reaches_a_file_of_the_server(server):
    for path in ("static/../session.py", "static/%2e%2e/session.py", "static/..%2Fserver.py", "api/../static/app.js",
                 "..%2F..%2Fpyproject.toml"):
        status, body, _ = get(server + path)
        assert status == 404 or (status == 200 and b"ganforge explore" in body), (path, status)
    assert get(server + "static/app.js")[0] == 200


def test_files_are_what_the_cli_writes(server, runs, tmp_path, capsys):
    run = str(runs["cond"].path)
    gif = get(server + "api/interpolate?t=3~7&t=17~7&t=42~7&frames=9")[1]
    assert run_cli(capsys, "interpolate", run, "--seeds", "3,17,42", "--label", "7", "--frames", "9",
                   "--out", str(tmp_path / "walk.gif"))[0] == 0
    assert gif == (tmp_path / "walk.gif").read_bytes()
    figure = get(server + "api/arithmetic?groups=%2B3,17;-5,8&label=4")[1]
    assert run_cli(capsys, "arithmetic", run, "--plus", "3,17", "--minus", "5,8", "--label", "4",
                   "--out", str(tmp_path / "sum.png"))[0] == 0
    assert figure == (tmp_path / "sum.png").read_bytes()
    # Latents saved by the page: `ganforge sample --z` draws the same tiles.
    (tmp_path / "tiles.npz").write_bytes(get(server + "api/latents.npz?t=3~1&t=9~4&psi=0.5")[1])
    assert run_cli(capsys, "sample", run, "--z", str(tmp_path / "tiles.npz"), "--out", str(tmp_path / "t.npz"))[0] == 0
    drawn = np.load(tmp_path / "t.npz")["images"]
    tile = np.asarray(Image.open(io.BytesIO(get(server + "api/tile?t=9~4&psi=0.5")[1])))
    assert np.array_equal(drawn[1, ..., 0], tile) and np.load(tmp_path / "t.npz")["labels"].tolist() == [1, 4]


def test_a_moved_tile_becomes_a_latent_of_its_own(server):
    moved = json.loads(get(server + "api/latent?t=5~3&dirs=2,0,-1&psi=0.8")[1])["ref"]
    assert moved.startswith("z.") and moved.endswith("~3")
    a = get(server + f"api/tile?t={moved}")[1]
    b = get(server + "api/tile?t=5~3&dirs=2,0,-1&psi=0.8")[1]
    assert a == b and a != get(server + "api/tile?t=5~3")[1]


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` × ``height`` pixels (a decompression bomb), with a tiny image."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def test_uploads_are_limited_and_checked(server):
    host, port = re.match(r"http://([^:]+):(\d+)/", server).groups()
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.putrequest("POST", "/api/project")
    connection.putheader("Content-Length", str(8 * 2**20 + 10))  # refused on its header, before any body
    connection.endheaders()
    answer = connection.getresponse()
    assert answer.status == 413 and b"at most" in answer.read()
    connection.close()
    for width in (5000, 60000):  # over ganforge's limit; over Pillow's own bomb limit too
        status, body, _ = get(server + "api/project", _png_header(width, width))
        assert status == 400 and b"pixels are accepted" in body, body
    status, body, _ = get(server + "api/project", b"not an image at all")
    assert status == 400 and b"not an image" in body


def test_an_uploaded_image_is_projected_into_a_tile(server, runs):
    g = runs["cond"].load_generator(device="cpu")
    buf = io.BytesIO()
    Image.fromarray(ganforge.images.to_uint8(g.sample(1, labels=[6], seed=3))[0, ..., 0]).resize((32, 32)).save(buf, "PNG")
    job = json.loads(get(server + "api/project", buf.getvalue())[1])["job"]
    for _ in range(600):
        state = json.loads(get(server + f"api/project/{job}")[1])
        if state["done"]:
            break
        threading.Event().wait(0.1)
    assert state["done"] and state["error"] is None and state["pixel_error"] < 0.25
    assert get(server + f"api/tile?t={state['ref']}")[0] == 200


def test_fifty_concurrent_requests_and_clients_that_hang_up(server):
    results: list[int] = []

    def one(i: int) -> None:
        results.append(get(server + f"api/tile?t={i}~{i % 10}&psi=0.{i % 10}")[0])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    host, port = re.match(r"http://([^:]+):(\d+)/", server).groups()
    for _ in range(10):  # clients that send a request for a large answer and leave before it comes
        with socket.create_connection((host, int(port))) as s:
            s.sendall(b"GET /api/interpolate?t=1~2&t=2~2&frames=200 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    for t in threads:
        t.join(timeout=120)
    assert results == [200] * 50
    assert get(server + "api/info")[0] == 200  # still serving


def _request(server: str, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes, dict]:
    host, port = re.match(r"http://([^:]+):(\d+)/", server).groups()
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request(method, path, body=body or None, headers=headers)
        answer = connection.getresponse()
        return answer.status, answer.read(), dict(answer.getheaders())
    finally:
        connection.close()


def test_other_hosts_and_other_sites_are_refused_and_the_page_loads_only_its_own(server):
    # DNS rebinding: a page of evil.example whose name now points at 127.0.0.1 sends its own Host.
    status, body, _ = _request(server, "GET", "/api/info", {"Host": "evil.example:8000"})
    assert status == 421 and b"not this server's name" in body
    # Any site can make the browser POST here, without reading the answer: not with another Origin.
    own = re.match(r"http://([^/]+)/", server).group(1)
    status, body, _ = _request(server, "POST", "/api/project", {"Host": own, "Origin": "http://evil.example"}, b"x")
    assert status == 403 and b"another site" in body
    status, _, headers = _request(server, "GET", "/", {"Host": own})
    assert status == 200 and "default-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert _request(server, "GET", "/api/info", {"Host": "localhost"})[0] == 200


def test_names_a_server_answers_to():
    from ganforge.explore.server import _hostname, allowed_hosts

    assert allowed_hosts("127.0.0.1") == ("127.0.0.1", "localhost", "::1")
    assert allowed_hosts("192.168.1.5")[-1] == "192.168.1.5" and allowed_hosts("0.0.0.0") is None
    assert [_hostname(h) for h in ("127.0.0.1:8000", "[::1]:80", "http://localhost:9", "[bad")] == \
        ["127.0.0.1", "::1", "localhost", None]


def test_projections_running_at_once_are_limited_and_old_jobs_forgotten(runs, monkeypatch):
    from ganforge.explore import session as session_module

    release = threading.Event()

    def slow_project(g, target, d, steps, progress):  # noqa: ANN001, ANN202  stands in until released
        release.wait(30)
        raise RuntimeError("released")

    monkeypatch.setattr(session_module, "project", slow_project)
    monkeypatch.setattr(session_module, "MAX_JOBS", 3)
    g = runs["cond"].load_generator(device="cpu")
    explorer = session_module.Session(g)
    buf = io.BytesIO()
    Image.new("L", (8, 8)).save(buf, "PNG")
    upload = buf.getvalue()
    first = [explorer.start_projection(upload) for _ in range(session_module.MAX_PROJECTIONS)]
    with pytest.raises(session_module.Busy, match="projections are running"):
        explorer.start_projection(upload)
    release.set()
    for _ in range(300):
        if all(explorer.job(j)["done"] for j in first):
            break
        threading.Event().wait(0.05)
    later = [explorer.start_projection(upload) for _ in range(2)]  # room again; the oldest finished job goes
    assert len(explorer.jobs) == 3 and first[0] not in explorer.jobs and later[-1] in explorer.jobs
    with pytest.raises(ganforge.GanforgeError, match="no projection"):
        explorer.job(first[0])


@pytest.mark.slow
def test_a_code_model_s_page_has_its_codes(runs):
    proc, url = start_server(runs["codes"].path)
    try:
        info = json.loads(get(url + "api/info")[1])
        assert info["codes"] == ["code 0 (categorical, 3 values)", "code 1 (continuous)"] and not info["classes"]
        a, b = get(url + "api/tile?t=4&codes=0=0")[1], get(url + "api/tile?t=4&codes=0=2")[1]
        assert a != b
        assert get(url + "api/sweep?t=4&code=1")[0] == 200
        status, body, _ = get(url + "api/tile?t=4&codes=0=5")
        assert status == 400 and b"takes 0..2" in body
    finally:
        code, err = stop(proc)
    assert code == 0 and "stopped" in err  # Ctrl-C stops it cleanly


def test_a_taken_port_and_a_missing_extra_are_one_line(runs, capsys, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        expect_error(capsys, ["explore", str(runs["cond"].path), "--port", str(port)], f"--port {port}", "already in use")
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    expect_error(capsys, ["explore", str(runs["cond"].path)], 'pip install "ganforge[explore]"')


def test_project_from_the_command_line(runs, tmp_path, capsys):
    g = runs["cond"].load_generator(device="cpu")
    target = ganforge.images.to_uint8(g.sample(2, labels=[1, 8], seed=0))
    for i, img in enumerate(target):
        Image.fromarray(img[..., 0]).save(tmp_path / f"d{i}.png")
    code, out, err = run_cli(capsys, "project", str(runs["cond"].path), str(tmp_path / "d0.png"), str(tmp_path / "d1.png"),
                             "--steps", "60", "--out", str(tmp_path / "p.npz"))
    assert code == 0, err
    saved = np.load(tmp_path / "p.npz")
    assert saved["z"].shape == (2, g.latent_dim) and saved["labels"].shape == (2,)
    assert (tmp_path / "p.png").is_file() and out.count("pixel error") == 2
    back = g.sample(2, labels=saved["labels"].tolist(), z=torch.from_numpy(saved["z"]))
    assert ((back - ganforge.images.pixels_to_float(torch.from_numpy(target).permute(0, 3, 1, 2))).abs() / 2).mean() < 0.2
    expect_error(capsys, ["project", str(runs["cond"].path), str(tmp_path / "nope.png")], "no such image file")


def test_a_packed_discriminator_is_left_out_of_the_distance(tmp_path):
    from ganforge.projection import project

    run = ganforge.train(tiny_config(tmp_path, steps=2, pack=2), progress=False)
    g, d = run.load_generator(device="cpu"), run.load_discriminator(device="cpu")
    target = g.sample(3, seed=1)  # three images: a pack of two does not divide them
    with_d, pixels_only = project(g, target, d, steps=5), project(g, target, None, steps=5)
    assert torch.equal(with_d.z, pixels_only.z)  # its features describe packs, not images: pixels alone


# -- the page in a real browser ------------------------------------------------------------------------------------

def wait_until(page, expression: str, timeout_s: float = 60) -> None:
    """Poll ``expression`` from outside the page: Playwright's wait_for_function evaluates its predicate in the
    page, with eval, which the server's content security policy rightly forbids."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after {timeout_s} s: {expression}"
        page.wait_for_timeout(50)


@pytest.mark.slow
def test_the_page_in_chromium(server, runs, tmp_path, capsys):
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    outside, errors = [], []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith((server, "data:", "blob:")) else None)
        try:
            page.goto(server)
            page.wait_for_selector(".cell")
            assert page.locator(".cell").count() == 64
            # Clicking tiles builds a path that plays.
            page.check("input[value=path]")
            for i in (3, 17, 42):
                page.click(f".cell >> nth={i}")
            wait_until(page, "document.querySelectorAll('#path .chip').length === 3")
            page.click("#play")
            wait_until(page, "document.getElementById('walk').naturalWidth > 0")
            # The GIF link downloads what `ganforge interpolate` writes for the same seeds.
            with page.expect_download() as download:
                page.click("#gif")
            download.value.save_as(tmp_path / "page.gif")
            refs = page.evaluate("window.ganforgeExplore.state.path")
            seeds = ",".join(r.split("~")[0] for r in refs)
            assert run_cli(capsys, "interpolate", str(runs["cond"].path), "--seeds", seeds, "--labels",
                           ",".join(r.split("~")[1] for r in refs), "--frames", "24", "--out", str(tmp_path / "cli.gif"))[0] == 0
            assert (tmp_path / "page.gif").read_bytes() == (tmp_path / "cli.gif").read_bytes()
            # Arithmetic shows a result.
            page.check("input[value=plus]")
            page.click(".cell >> nth=5")
            page.click(".cell >> nth=15")
            page.check("input[value=minus]")
            page.click(".cell >> nth=25")
            page.select_option("#label", "3")
            page.click("#compute")
            wait_until(page, "document.getElementById('sum').naturalWidth > 0")
            # A direction slider moves the selected tile: its pixels change.
            page.check("input[value=select]")
            page.click(".cell >> nth=7")
            wait_until(page, "document.getElementById('tile').naturalWidth > 0")
            before = page.locator("#tile").screenshot()
            page.click("#load-directions")
            page.wait_for_selector("[data-direction='0']")
            page.fill("[data-direction='0']", "4")
            page.dispatch_event("[data-direction='0']", "input")
            wait_until(page, "JSON.parse(document.getElementById('tile').dataset.params || '{}').dirs")
            page.wait_for_timeout(300)
            assert page.locator("#tile").screenshot() != before
            assert "dirs=4" in page.url  # the URL holds the state
            # An uploaded image is projected into a tile.
            g = runs["cond"].load_generator(device="cpu")
            Image.fromarray(ganforge.images.to_uint8(g.sample(1, labels=[2], seed=9))[0, ..., 0]).save(tmp_path / "up.png")
            page.set_input_files("#upload", str(tmp_path / "up.png"))
            page.wait_for_selector("#projected .chip", timeout=120_000)
            assert "proj=" in page.url
            # A link reproduces the view.
            again = browser.new_page()
            again.goto(page.url)
            wait_until(again, "document.querySelectorAll('#path .chip').length === 3")
            assert again.evaluate("window.ganforgeExplore.state.dirs[0]") == 4
        finally:
            browser.close()
    assert not errors, errors
    assert not outside, outside

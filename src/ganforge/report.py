"""The HTML run report: one page that opens offline and shows what the run directory holds.

Everything is inline: the charts are SVG drawn here, the images data URIs, the script a few lines for
the sample slider and the step/seconds switch. The page reads only the run directory (config.yaml,
hardware.json, metrics.jsonl, samples/, checkpoints/best.pt, generator.safetensors, metrics.json,
probe.json), so ``ganforge report RUN`` works on a copied run as well as during training.
"""

from __future__ import annotations

import base64
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from PIL import Image

from .config import Config
from .errors import GanforgeError
from .files import atomic_write
from .images import grid_image
from .latent import class_sweep, code_sweep, seed_latents
from .losses import LOSSES
from .metrics.registry import METRICS
from .run import Run, finite, is_training_row
from .sampling import class_columns, sample_grid

MAX_FRAMES = 60  # sample grids embedded for the slider; more are subsampled evenly
MAX_POINTS = 2000  # points drawn per curve; longer runs are subsampled evenly (every row stays in metrics.jsonl)
SWEEP_SEEDS = (0, 1, 2, 3)
MAX_SWEEP_CLASSES = 16
MAX_CODE_SWEEPS = 4  # the first codes get a sweep each
COLORS = ("#1f6fb4", "#d9480f", "#2b8a3e", "#7048e8")

# (id, title, [(metrics.jsonl key, legend)], fixed y range); D's outputs take their loss's output_range
TRAIN_CHARTS: tuple[tuple[str, str, tuple[tuple[str, str], ...], tuple[float, float] | None], ...] = (
    ("losses", "Losses", (("loss_d", "D loss"), ("loss_g", "G loss")), None),
    ("d_outputs", "D(x) and D(G(z))", (("d_real", "D(x): mean on real"), ("d_fake", "D(G(z)): mean on fake")),
     None),
    ("diversity", "Diversity: spread of the fakes / spread of the reals", (("diversity", "diversity"),), None),
    ("speed", "Speed", (("img_per_s", "images per second"),), None),
)
EXTRA_EVAL_KEYS = ("label_accuracy", "classes_present", "class_ratio")
EVAL_RANGES = {"pr": (0.0, 1.0), "label_accuracy": (0.0, 1.0)}  # fractions: the whole scale tells more


@dataclass
class Page:
    """What the report shows of a run, each file read once."""

    run: Run
    config: Config
    hardware: list[dict[str, Any]]
    train_rows: list[dict[str, Any]]
    eval_rows: list[dict[str, Any]]
    samples: list[tuple[int, Path]]
    best_step: int | None

    @classmethod
    def read(cls, run: Run) -> Page:
        """Missing files mean empty sections."""
        rows = run.rows()
        return cls(run, run.config, run.hardware(), [r for r in rows if is_training_row(r)],
                   [r for r in rows if not is_training_row(r)], run.sample_grids(), run.best_step())


# -- charts --------------------------------------------------------------------------------------------------

W, H = 600, 230
LEFT, RIGHT, TOP, BOTTOM = 58, 14, 16, 36


def _fmt(v: float) -> str:
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
        return f"{v:.2e}"
    return f"{v:.4g}"


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round numbers between lo and hi, about n of them."""
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9)
    return [k * step for k in range(first, math.floor(hi / step + 1e-9) + 1)]


def _span(values: Sequence[float], pad: float) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if hi - lo < 1e-12 * max(1.0, abs(hi)):  # one value: centre it
        d = max(abs(hi) * 0.1, 0.5)
        return lo - d, hi + d
    return lo - pad * (hi - lo), hi + pad * (hi - lo)


def _evenly(n: int, cap: int) -> list[int]:
    """Indices of at most ``cap`` of n items, evenly spaced, first and last included."""
    if n <= cap:
        return list(range(n))
    return sorted({round(i * (n - 1) / (cap - 1)) for i in range(cap)})


@dataclass
class Series:
    label: str
    xs: list[float]
    ys: list[float]


def svg_chart(chart: str, axis: str, series: Sequence[Series], y_range: tuple[float, float] | None = None,
              alarms: Sequence[tuple[float, float, str]] = (), best: float | None = None) -> str:
    """A line chart as inline SVG. Each curve is a <polyline> whose point count is the SVG's data-points;
    ``alarms`` are (from x, to x, text) bands, ``best`` a marked x."""
    xs = [x for s in series for x in s.xs]
    ys = [y for s in series for y in s.ys]
    points = len(series[0].xs) if series else 0
    head = (f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" data-chart="{chart}" data-axis="{axis}" '
            f'data-points="{points}" aria-label="{escape(chart)} against {axis}">')
    if not xs:
        return head + f'<text x="{W / 2}" y="{H / 2}" class="empty">no data yet</text></svg>'
    x0, x1 = _span(xs + [b for b in [best] if b is not None], 0.0)
    y0, y1 = y_range or _span(ys, 0.05)
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * pw

    def py(y: float) -> float:
        return TOP + (1 - (y - y0) / (y1 - y0)) * ph

    out = [head, f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" class="plot"/>']
    for t in _ticks(y0, y1):
        out.append(f'<line x1="{LEFT}" x2="{LEFT + pw}" y1="{py(t):.1f}" y2="{py(t):.1f}" class="grid"/>'
                   f'<text x="{LEFT - 6}" y="{py(t) + 4:.1f}" class="ytick">{_fmt(t)}</text>')
    for t in _ticks(x0, x1):
        out.append(f'<text x="{px(t):.1f}" y="{TOP + ph + 16}" class="xtick">{_fmt(t)}</text>')
    out.append(f'<text x="{LEFT + pw / 2}" y="{H - 3}" class="xlabel">{escape(axis)}</text>')
    for a, b, text in alarms:
        width = max(px(b) - px(a), 1.5)
        out.append(f'<rect x="{px(a) - 0.75:.1f}" y="{TOP}" width="{width:.1f}" height="{ph}" class="alarm">'
                   f'<title>{escape(text)}</title></rect>')
    if best is not None:
        right = px(best) > W - RIGHT - 60  # near the right edge: the label goes left of the line
        anchor = ' text-anchor="end"' if right else ""
        out.append(f'<line x1="{px(best):.1f}" x2="{px(best):.1f}" y1="{TOP}" y2="{TOP + ph}" class="best"/>'
                   f'<text x="{px(best) + (-4 if right else 4):.1f}" y="{TOP + 12}" class="best-label"{anchor}>'
                   'best.pt</text>')
    for i, s in enumerate(series):
        color = COLORS[i % len(COLORS)]
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(s.xs, s.ys, strict=True))
        out.append(f'<polyline points="{coords}" stroke="{color}" data-series="{escape(s.label)}">'
                   f'<title>{escape(s.label)}</title></polyline>')
        if len(s.xs) <= 40:  # few points (evaluations, a short run): show each one
            out.extend(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{color}">'
                       f'<title>{escape(s.label)} at {axis} {_fmt(x)}: {_fmt(y)}</title></circle>'
                       for x, y in zip(s.xs, s.ys, strict=True))
    out.append("</svg>")
    return "".join(out)


def _legend(labels: Sequence[str]) -> str:
    return '<div class="legend">' + "".join(
        f'<span><i style="background:{COLORS[i % len(COLORS)]}"></i>{escape(label)}</span>'
        for i, label in enumerate(labels)) + "</div>"


def _series(rows: Sequence[dict[str, Any]], axis: str, key: str, label: str) -> Series:
    pts = [(r[axis], r[key]) for r in rows if finite(r.get(axis)) and finite(r.get(key))]
    return Series(label, [p[0] for p in pts], [p[1] for p in pts])


def _chart_pair(chart: str, title: str, rows: Sequence[dict[str, Any]], keys: Sequence[tuple[str, str]],
                y_range: tuple[float, float] | None = None, spans: Sequence[AlarmSpan] = (),
                best_row: dict[str, Any] | None = None) -> str:
    """The same chart against step and against seconds; the page shows one of the two."""
    svgs = []
    for axis in ("step", "seconds"):
        alarms = [(s.first[axis], s.last[axis], f"{s.steps}: {s.message}") for s in spans
                  if finite(s.first.get(axis)) and finite(s.last.get(axis))]
        best = best_row[axis] if best_row is not None and finite(best_row.get(axis)) else None
        svgs.append(svg_chart(chart, axis, [_series(rows, axis, k, label) for k, label in keys], y_range,
                              alarms, best))
    return (f'<figure class="card"><figcaption>{escape(title)}</figcaption>{_legend([k[1] for k in keys])}'
            f'{"".join(svgs)}</figure>')


# -- sections ------------------------------------------------------------------------------------------------

def _table(rows: Sequence[Sequence[Any]], header: Sequence[str] | None = None, highlight: int | None = None) -> str:
    out = ["<table>"]
    if header:
        out.append("<tr>" + "".join(f"<th>{escape(str(h))}</th>" for h in header) + "</tr>")
    for i, row in enumerate(rows):
        cls = ' class="best-row"' if i == highlight else ""
        out.append(f"<tr{cls}>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>")
    return "".join(out) + "</table>"


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return _fmt(v)
    if isinstance(v, list | tuple):
        return escape(", ".join(map(str, v))) if v else "[]"
    return "–" if v is None else escape(str(v))


def _flatten(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in d.items():
        if isinstance(v, dict):
            out.extend(_flatten(v, f"{prefix}{k}."))
        else:
            out.append((f"{prefix}{k}", v))
    return out


def _json_table(data: Any) -> str:
    """metrics.json (one column per feature network) or any JSON object (dotted keys, one value each)."""
    if not isinstance(data, dict) or not data:
        return f"<pre>{escape(json.dumps(data, indent=2))}</pre>"
    if all(isinstance(v, dict) for v in data.values()):
        cols = list(data)
        keys = list(dict.fromkeys(k for v in data.values() for k in v))
        return _table([[k, *(data[c].get(k) for c in cols)] for k in keys], ["", *cols])
    return _table(_flatten(data))


def _run_section(d: Page) -> str:
    cfg_tables = "".join(f'<div class="card"><h3>{escape(str(name))}</h3>{_table(list(section.items()))}</div>'
                         for name, section in d.config.to_dict().items())
    if d.hardware:
        keys = list(dict.fromkeys(k for e in d.hardware for k in e))
        header = [""] + [f"from step {e.get('from_step', '?')}" for e in d.hardware]
        hw = _table([[k, *(e.get(k) for e in d.hardware)] for k in keys], header)
    else:
        hw = "<p>Not recorded yet: training writes hardware.json with its first report.</p>"
    return (f'<section id="run"><h2>Configuration</h2><div class="cards">{cfg_tables}</div>'
            f'<h2 id="hardware">Hardware</h2><div class="card wide">{hw}</div></section>')


@dataclass
class AlarmSpan:
    """Consecutive metrics.jsonl rows that sound the same alarm."""

    first: dict[str, Any]
    last: dict[str, Any]
    rows: int
    message: str

    @property
    def steps(self) -> str:
        a, b = self.first["step"], self.last["step"]
        return f"step {a}" if a == b else f"steps {a}–{b}"


def _alarm_spans(rows: Sequence[dict[str, Any]]) -> list[AlarmSpan]:
    spans: list[AlarmSpan] = []
    previous = None
    for r in rows:
        alarm = r.get("alarm")
        if alarm and alarm == previous:
            spans[-1].last, spans[-1].rows = r, spans[-1].rows + 1
        elif alarm:
            spans.append(AlarmSpan(r, r, 1, str(alarm)))
        previous = alarm
    return spans


def _curves_section(d: Page) -> str:
    rows = d.train_rows
    if not rows:
        return ('<section id="curves"><h2>Training curves</h2><p>No metrics.jsonl rows yet: the first is written '
                f'after {d.config.log_every} steps.</p></section>')
    shown = [rows[i] for i in _evenly(len(rows), MAX_POINTS)]
    note = "" if len(shown) == len(rows) else (
        f'<p class="note">{len(rows)} rows, drawn as {len(shown)} evenly spaced points.</p>')
    spans = _alarm_spans(rows)
    loss = LOSSES.get(d.config.loss)  # d_real/d_fake are in its units: BCE's are probabilities
    d_range = loss.output_range if loss else None
    charts = "".join(_chart_pair(c, title, shown, keys, d_range if c == "d_outputs" else y_range, spans)
                     for c, title, keys, y_range in TRAIN_CHARTS)
    alarms = (f"<h3>Alarms</h3><p>Red bands on the curves mark the rows with an alarm.</p>"
              f"{_table([(s.steps, s.rows, s.message) for s in spans], ['when', 'rows', 'alarm'])}"
              if spans else "<p>No row raised an alarm.</p>")
    return (f'<section id="curves"><h2>Training curves</h2>{note}'
            '<div class="axis-switch">x axis: <button type="button" data-set-axis="step" aria-pressed="true">step'
            '</button><button type="button" data-set-axis="seconds" aria-pressed="false">seconds</button></div>'
            f'<div class="cards">{charts}</div>{alarms}</section>')


def _eval_section(d: Page) -> str:
    rows = d.eval_rows
    if not rows:
        every = d.config.eval_every
        why = (f"the first comes at step {every}" if every else
               "turn it on with --eval-every N, or score a finished run with ganforge evaluate")
        return f'<section id="evaluation"><h2>Evaluation during training</h2><p>No evaluations yet: {why}.</p></section>'
    groups = [(m.name, [k for k in m.keys if not k.endswith("_std")]) for m in METRICS.values()]
    groups += [(k, [k]) for k in EXTRA_EVAL_KEYS]
    groups = [(name, [k for k in keys if any(finite(r.get(k)) for r in rows)]) for name, keys in groups]
    groups = [(name, keys) for name, keys in groups if keys]
    present = [k for _, keys in groups for k in keys]
    best_row = next((r for r in rows if r["step"] == d.best_step), None)
    features = rows[-1].get("features")
    charts = "".join(_chart_pair(f"eval-{name}", " and ".join(keys) + (f" ({features} features)" if name == "fid"
                                                                       and features else ""),
                                 rows, [(k, k) for k in keys], EVAL_RANGES.get(name), best_row=best_row)
                     for name, keys in groups)
    columns = ["step", "seconds", *present, *(k for k in dict.fromkeys(k for r in rows for k in r)
                                               if k not in present and k not in ("step", "seconds"))]
    highlight = rows.index(best_row) if best_row is not None else None
    best = (f"<p>checkpoints/best.pt is step {d.best_step} (best {d.config.eval_metrics[0]}), highlighted "
            "below and marked on the charts.</p>" if best_row is not None else "")
    table = _table([[r.get(c) for c in columns] for r in rows], columns, highlight)
    return (f'<section id="evaluation"><h2>Evaluation during training</h2>{best}'
            f'<div class="cards">{charts}</div><div class="card wide scroll">{table}</div></section>')


def _png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def _img(img: Image.Image, alt: str) -> str:
    """An inline <img>, shown at twice its size when small (pixelated, so tiles stay sharp)."""
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    width = img.width * 2 if img.width <= 360 else img.width
    return f'<img class="pixels" src="{_png_uri(buf.getvalue())}" width="{width}" alt="{escape(alt)}">'


def _samples_section(d: Page) -> str:
    if not d.samples:
        return ('<section id="samples"><h2>Samples during training</h2><p>No sample grids yet: the first is '
                f'written at step {d.config.sample_every}.</p></section>')
    picked = [d.samples[i] for i in _evenly(len(d.samples), MAX_FRAMES)]
    frames = [{"step": step, "src": _png_uri(path.read_bytes())} for step, path in picked]
    note = (f" Showing {len(picked)} of {len(d.samples)} grids, evenly spaced." if len(picked) < len(d.samples)
            else "")
    last = frames[-1]
    # "</" cannot occur in base64 or numbers, but escape it anyway so the JSON can never close the <script>.
    payload = json.dumps(frames).replace("</", "<\\/")
    return (f'<section id="samples"><h2>Samples during training</h2><p>The same latents at every step, drawn by '
            f'the EMA generator.{note}</p><div class="card viewer">'
            f'<div class="controls"><button type="button" id="sample-play">play</button>'
            f'<input type="range" id="sample-slider" min="0" max="{len(frames) - 1}" value="{len(frames) - 1}" '
            f'step="1" aria-label="sample grid"><span id="sample-step">step {last["step"]} '
            f'({len(frames)} of {len(frames)})</span></div>'
            f'<img id="sample-img" class="pixels" src="{last["src"]}" alt="samples at step {last["step"]}"></div>'
            f'<script type="application/json" id="sample-data">{payload}</script></section>')


def _generator_section(d: Page) -> str:
    run = d.run
    title = '<section id="generator"><h2>Final generator</h2>'
    if not run.generator.is_file() or (run.latest.is_file()
                                       and run.generator.stat().st_mtime < run.latest.stat().st_mtime):
        return title + "<p>generator.safetensors, the exported EMA generator, is written when training ends.</p></section>"
    try:
        g = run.load_generator(device="cpu")
    except GanforgeError as e:  # the rest of the page is still worth having
        return title + f"<p>{escape(str(e))}</p></section>"
    k = len(g.classes)
    # A column per class; a self-conditioned G's samples follow its clusters' sizes, so no column is one cluster.
    columns = class_columns(g)
    n, nrow = (columns * max(1, 64 // columns), columns) if columns else (64, 8)
    grid, _ = sample_grid(g, n, nrow=nrow)
    cmd = f"ganforge sample {run.path} --n {n}" + (f" --nrow {nrow}" if g.takes_labels and nrow != k else "")
    out = [title, f'<div class="cards"><figure class="card"><figcaption>{n} samples of the EMA generator, each '
                  f'tile numbered with its seed ({escape(cmd)} draws the same)</figcaption>'
                  f'{_img(grid, "final samples")}</figure>']
    if g.takes_labels:
        classes = g.classes[:MAX_SWEEP_CLASSES]
        sweep = class_sweep(g, seed_latents(g, SWEEP_SEEDS), classes)
        seeds = ",".join(map(str, SWEEP_SEEDS))
        kind = "cluster" if g.kind == "self-conditioned" else "class"
        out.append(f'<figure class="card"><figcaption>{kind.capitalize()} sweep: one z per row (seeds {seeds}), one '
                   f'{kind} per column ({", ".join(map(str, classes))}); ganforge sweep {escape(str(run.path))} --seeds {seeds}'
                   f'</figcaption>{_img(grid_image(sweep, len(classes)), "class sweep")}</figure>')
    for i in range(min(g.codes.count, MAX_CODE_SWEEPS)):
        label = g.classes[0] if g.takes_labels else None  # a G that also takes a label: the first class
        values = g.codes.sweep_values(i)
        sweep = code_sweep(g, seed_latents(g, SWEEP_SEEDS), i, values, label)
        shown = ", ".join(f"{v:g}" for v in values)
        seeds = ",".join(map(str, SWEEP_SEEDS))
        out.append(f'<figure class="card"><figcaption>Code sweep: {escape(g.codes.describe(i))}, one z per row (seeds '
                   f'{seeds}), one value per column ({shown}); ganforge sweep {escape(str(run.path))} --seeds {seeds} '
                   f'--code {i}</figcaption>{_img(grid_image(sweep, len(values)), f"code {i} sweep")}</figure>')
    return "".join(out) + "</div></section>"


def _files_section(d: Page) -> str:
    parts = []
    for path, what in ((d.run.evaluation, "ganforge evaluate"), (d.run.probe_path, "ganforge probe")):
        name, data = path.name, d.run.read_json(path)
        if data is not None:
            parts.append(f'<h3>{name} <span class="note">(the last {what})</span></h3>'
                         f'<div class="card wide scroll">{_json_table(data)}</div>')
    if not parts:
        return ""
    return f'<section id="files"><h2>Evaluation and probe</h2>{"".join(parts)}</section>'


def _summary(d: Page) -> str:
    c, last = d.config, d.train_rows[-1] if d.train_rows else {}
    kind = d.run.describe_kind()
    facts = [("dataset", c.dataset), ("model", f"{c.model}, {kind}" if kind else c.model), ("preset", c.preset),
             ("step", last.get("step")),
             ("training time", f"{last['seconds']:.0f} s" if finite(last.get("seconds")) else None),
             ("last losses", f"D {last['loss_d']:.3f}, G {last['loss_g']:.3f}"
              if finite(last.get("loss_d")) and finite(last.get("loss_g")) else None),
             ("best checkpoint", f"step {d.best_step}" if d.best_step is not None else None)]
    return '<dl class="summary">' + "".join(f"<div><dt>{escape(k)}</dt><dd>{_cell(v)}</dd></div>"
                                            for k, v in facts if v is not None) + "</dl>"


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#f4f5f7}
header{background:#1d2330;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}
header p{margin:2px 0 0;color:#aeb6c4;font-size:12px}nav{margin-top:6px}
nav a{color:#cfe0ff;margin-right:14px;text-decoration:none}main{padding:8px 24px 40px;max-width:1500px}
h2{margin:26px 0 10px;font-size:18px}h3{font-size:15px;margin:14px 0 6px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(440px,1fr));gap:14px}
.card{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:10px 12px;margin:0}
.wide{max-width:100%}.scroll{overflow-x:auto}figcaption{font-weight:600;margin-bottom:4px}
svg.chart{width:100%;height:auto;display:block}svg .plot{fill:#fbfbfc;stroke:#c9ced6}
svg .grid{stroke:#e6e8ec}svg polyline{fill:none;stroke-width:1.6}
svg text{font-size:11px;fill:#5b6475}svg .ytick{text-anchor:end}svg .xtick,svg .xlabel,svg .empty{text-anchor:middle}
svg .alarm{fill:#e03131;fill-opacity:.25}svg .best{stroke:#2b8a3e;stroke-dasharray:4 3;stroke-width:1.5}
svg .best-label{fill:#2b8a3e;font-weight:600}
body:not([data-axis=seconds]) svg[data-axis=seconds],body[data-axis=seconds] svg[data-axis=step]{display:none}
.legend span{margin-right:14px;font-size:12px}.legend i{display:inline-block;width:12px;height:3px;margin:0 5px 3px 0;
vertical-align:middle}
table{border-collapse:collapse;font-size:12.5px;width:100%}td,th{padding:3px 8px;border-bottom:1px solid #eceef2;
text-align:left;vertical-align:top}th{background:#f7f8fa}td:first-child{color:#5b6475;white-space:nowrap}
tr.best-row td{background:#ebfbee;font-weight:600}
.summary{display:flex;flex-wrap:wrap;gap:8px 26px;margin:16px 0 0}.summary dt{font-size:11px;color:#5b6475}
.summary dd{margin:0;font-weight:600}.note{color:#5b6475;font-weight:400}
.axis-switch{margin:0 0 10px}.axis-switch button,.controls button{margin-left:6px;border:1px solid #b8bfca;
background:#fff;border-radius:4px;padding:2px 10px;cursor:pointer}
.axis-switch button[aria-pressed=true]{background:#1f6fb4;color:#fff;border-color:#1f6fb4}
.viewer{display:inline-block;max-width:100%}.controls{display:flex;align-items:center;gap:10px;margin-bottom:8px}
.controls input{width:320px;max-width:50vw}img.pixels{image-rendering:pixelated;max-width:100%;display:block}
.viewer img.pixels{width:min(100%,520px)}
"""

SCRIPT = """
(function () {
  document.querySelectorAll("[data-set-axis]").forEach(function (b) {
    b.addEventListener("click", function () {
      document.body.dataset.axis = b.dataset.setAxis;
      document.querySelectorAll("[data-set-axis]").forEach(function (o) {
        o.setAttribute("aria-pressed", String(o === b));
      });
    });
  });
  var data = document.getElementById("sample-data");
  if (!data) return;
  var frames = JSON.parse(data.textContent), slider = document.getElementById("sample-slider");
  var img = document.getElementById("sample-img"), label = document.getElementById("sample-step");
  var play = document.getElementById("sample-play"), timer = null;
  function show(i) {
    img.src = frames[i].src;
    img.alt = "samples at step " + frames[i].step;
    label.textContent = "step " + frames[i].step + " (" + (i + 1) + " of " + frames.length + ")";
  }
  slider.addEventListener("input", function () { show(Number(slider.value)); });
  play.addEventListener("click", function () {
    if (timer) { clearInterval(timer); timer = null; play.textContent = "play"; return; }
    play.textContent = "pause";
    timer = setInterval(function () {
      slider.value = (Number(slider.value) + 1) % frames.length;
      show(Number(slider.value));
    }, 400);
  });
})();
"""


def render_report(run: Run | str | Path) -> str:
    """The report of ``run`` as one HTML string."""
    d = Page.read(Run.of(run))
    name = escape(d.run.path.resolve().name)
    nav = "".join(f'<a href="#{a}">{t}</a>' for a, t in (("curves", "curves"), ("evaluation", "evaluation"),
                                                         ("samples", "samples"), ("generator", "final generator"),
                                                         ("run", "configuration"), ("hardware", "hardware")))
    body = "".join(f(d) for f in (_curves_section, _eval_section, _samples_section, _generator_section,
                                  _files_section, _run_section))
    written = datetime.now().astimezone().isoformat(timespec="seconds")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width, initial-scale=1"><title>{name} · ganforge report</title>'
            f'<style>{CSS}</style></head><body><header><h1>{name}</h1><p>ganforge run report · '
            f'{escape(str(d.run.path))} · written {written}</p><nav>{nav}</nav></header>'
            f'<main>{_summary(d)}{body}</main><script>{SCRIPT}</script></body></html>\n')


def write_report(run: Run | str | Path, out: str | Path | None = None) -> Path:
    """Write the report of ``run`` to ``out`` (default: RUN/report.html), atomically."""
    run = Run.of(run)
    html = render_report(run)
    target = Path(out) if out is not None else run.report
    target.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(target, html)


__all__ = ["Page", "render_report", "svg_chart", "write_report"]

// ganforge explore: the page. Everything it shows comes from /api on this server; the URL's hash holds the state.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const N = 64;
  const state = {seed: 0, psi: 1, label: "", selected: null, path: [], groups: [], dirs: [], codes: {},
                 layer: "", maps: "", projected: []};
  let info = null, gridRefs = [], gridColumns = 8;

  // -- talking to the server ------------------------------------------------------------------------------
  function url(path, params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) {
      if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
      else if (v !== "" && v !== null && v !== undefined) q.set(k, v);
    }
    const s = q.toString();
    return s ? `${path}?${s}` : path;
  }
  function showError(text) {
    const box = $("error");
    box.textContent = text;
    box.hidden = !text;
  }
  async function fetchOk(address, options) {
    const response = await fetch(address, options);
    if (!response.ok) {
      const text = await response.text();
      throw new Error(text || `${response.status} ${response.statusText}`);
    }
    showError("");
    return response;
  }
  async function json(address, options) { return (await fetchOk(address, options)).json(); }
  function fail(e) { showError(String(e.message || e)); }

  // -- the state in the URL ---------------------------------------------------------------------------------
  const codesText = () => Object.entries(state.codes).map(([i, v]) => `${i}=${v}`).join(",");  // as sample --code
  const groupsText = () => state.groups.filter((g) => g.refs.length)
    .map((g) => (g.sign > 0 ? "+" : "-") + g.refs.join(",")).join(";");
  function save() {
    const q = new URLSearchParams();
    q.set("seed", state.seed); q.set("psi", state.psi);
    if (state.label !== "") q.set("label", state.label);
    if (state.selected) q.set("sel", state.selected);
    if (state.path.length) q.set("path", state.path.join(","));
    if (groupsText()) q.set("groups", groupsText());
    if (state.dirs.some((d) => d)) q.set("dirs", state.dirs.join(","));
    if (codesText()) q.set("codes", codesText());
    if (state.layer) q.set("layer", state.layer);
    if (state.maps) q.set("maps", state.maps);
    if (state.projected.length) q.set("proj", state.projected.join(","));
    history.replaceState(null, "", "#" + q.toString());
  }
  function load() {
    const q = new URLSearchParams(location.hash.slice(1));
    const list = (k) => (q.get(k) || "").split(",").filter((x) => x);
    state.seed = Number(q.get("seed") || 0);
    state.psi = Number(q.get("psi") || 1);
    state.label = q.get("label") || "";
    state.selected = q.get("sel");
    state.path = list("path");
    state.groups = (q.get("groups") || "").split(";").filter((g) => g)
      .map((g) => ({sign: g[0] === "-" ? -1 : 1, refs: g.slice(1).split(",").filter((x) => x)}));
    state.dirs = list("dirs").map(Number);
    state.codes = Object.fromEntries(list("codes").map((c) => c.split("=")));
    state.layer = q.get("layer") || "";
    state.maps = q.get("maps") || "";
    state.projected = list("proj");
  }

  // -- a tile's parameters -----------------------------------------------------------------------------------
  function withLabel(ref) {
    return info.classes.length && !ref.includes("~") && state.label !== "" ? `${ref}~${state.label}` : ref;
  }
  function tileParams(ref) {
    return {t: withLabel(ref), psi: state.psi, dirs: state.dirs.some((d) => d) ? state.dirs.join(",") : "",
            codes: codesText(), layer: state.layer, maps: state.layer ? state.maps : ""};
  }
  const plain = () => state.psi === 1 && !state.dirs.some((d) => d) && !codesText() && !state.layer;
  async function asLatent(ref) {  // a tile as it is shown: a moved tile becomes a latent of its own
    if (plain()) return withLabel(ref);
    return (await json(url("/api/latent", tileParams(ref)))).ref;
  }
  const thumb = (ref) => url("/api/tile", {t: ref});
  const describe = (ref) => ref.startsWith("z.") ? "a latent" + (ref.includes("~") ? `, class ${ref.split("~")[1]}` : "")
    : `seed ${ref.split("~")[0]}` + (ref.includes("~") ? `, class ${ref.split("~")[1]}` : "");

  // -- the grid ----------------------------------------------------------------------------------------------
  async function loadGrid() {
    try {
      const g = await json(url("/api/grid", {seed: state.seed, n: N, psi: state.psi, label: state.label,
                                             codes: codesText()}));
      gridRefs = g.tiles;
      gridColumns = g.columns;
      const img = $("grid");
      img.onload = () => layoutCells(g.columns);
      img.src = g.image;
      $("grid-note").textContent = `tiles ${state.seed}..${state.seed + N - 1}: each tile's number is its seed, as ` +
        "ganforge sample numbers it";
    } catch (e) { fail(e); }
  }
  function layoutCells(columns) {
    const img = $("grid"), cells = $("grid-cells");
    cells.innerHTML = "";
    const scale = img.clientWidth / img.naturalWidth, pad = 2;
    const size = (img.naturalWidth - pad) / columns - pad;
    gridRefs.forEach((ref, i) => {
      const r = Math.floor(i / columns), c = i % columns;
      const cell = document.createElement("div");
      cell.className = "cell";
      cell.dataset.ref = ref;
      cell.dataset.index = i;
      Object.assign(cell.style, {left: `${(pad + c * (size + pad)) * scale}px`, top: `${(pad + r * (size + pad)) * scale}px`,
                                 width: `${size * scale}px`, height: `${size * scale}px`});
      cell.appendChild(document.createElement("span")).textContent = ref.split("~")[0];
      cell.title = describe(ref);
      cell.addEventListener("click", () => clicked(ref));
      cells.appendChild(cell);
    });
    markCells();
  }
  function markCells() {
    document.querySelectorAll(".cell").forEach((cell) => {
      cell.classList.toggle("selected", cell.dataset.ref === state.selected);
      cell.classList.toggle("in-path", state.path.includes(cell.dataset.ref));
    });
  }
  async function clicked(ref) {
    const tool = document.querySelector("input[name=tool]:checked").value;
    try {
      if (tool === "select") select(ref);
      else if (tool === "path") { state.path.push(await asLatent(ref)); drawPath(); }
      else addToGroup(tool === "plus" ? 1 : -1, await asLatent(ref));
    } catch (e) { fail(e); }
    save();
    markCells();
  }

  // -- the selected tile: its view, directions, maps, sweeps -----------------------------------------------------
  let inFlight = false, pending = false;
  async function drawTile() {  // one request at a time; the newest values win (a dragged slider stays smooth)
    if (!state.selected) return;
    if (inFlight) { pending = true; return; }
    inFlight = true;
    try {
      const params = tileParams(state.selected);
      const blob = await (await fetchOk(url("/api/tile", params))).blob();
      const img = $("tile");
      if (img.dataset.objectUrl) URL.revokeObjectURL(img.dataset.objectUrl);
      img.dataset.objectUrl = URL.createObjectURL(blob);
      img.src = img.dataset.objectUrl;
      img.dataset.params = JSON.stringify(params);
      $("tile-png").href = url("/api/tile", {...params, download: 1});
      $("tile-npz").href = url("/api/latents.npz", {...params, download: 1});
    } catch (e) { fail(e); }
    inFlight = false;
    if (pending) { pending = false; drawTile(); }
  }
  function select(ref) {
    state.selected = ref;
    $("tile-ref").textContent = describe(ref);
    drawTile();
    save();
  }
  async function loadDirections() {
    try {
      const d = await json("/api/directions");
      const box = $("directions");
      box.innerHTML = "";
      while (state.dirs.length < d.k) state.dirs.push(0);
      d.variance.forEach((v, j) => {
        const row = document.createElement("label");
        row.className = "slider";
        row.innerHTML = `<span>PC ${j} <small>${(100 * v).toFixed(1)}%</small></span>` +
          `<input type="range" min="-5" max="5" step="0.1" value="${state.dirs[j]}" data-direction="${j}">` +
          `<output>${Number(state.dirs[j]).toFixed(1)}</output>`;
        const input = row.querySelector("input"), out = row.querySelector("output");
        input.addEventListener("input", () => {
          state.dirs[j] = Number(input.value);
          out.textContent = state.dirs[j].toFixed(1);
          drawTile();
          save();
        });
        box.appendChild(row);
      });
    } catch (e) { fail(e); }
  }
  async function sweep() {
    if (!state.selected) return;
    const code = info.codes.length && !info.classes.length ? 0 : "";
    const img = $("sweep");
    img.src = url("/api/sweep", {...tileParams(state.selected), code, label: state.label});
    img.hidden = false;
  }

  // -- the path ----------------------------------------------------------------------------------------------------
  function chip(ref, onclick, sign) {
    const c = document.createElement("span");
    c.className = "chip";
    // Built as elements, never as markup: a ref can come from the URL, which anyone can write.
    const img = document.createElement("img");
    img.alt = describe(ref);
    img.src = thumb(ref);
    img.addEventListener("click", onclick);
    c.appendChild(img);
    if (sign) {
      const s = document.createElement("span");
      s.className = "sign";
      s.textContent = sign;
      c.appendChild(s);
    }
    return c;
  }
  function drawPath() {
    const box = $("path");
    box.innerHTML = "";
    state.path.forEach((ref, i) => box.appendChild(chip(ref, () => { state.path.splice(i, 1); drawPath(); save(); })));
    const params = {t: state.path, frames: $("frames").value, method: $("method").value, label: state.label};
    $("gif").href = url("/api/interpolate", {...params, download: 1});
    $("path-npz").href = url("/api/latents.npz", {t: state.path, download: 1});
  }
  function play() {
    if (state.path.length < 2) { showError("t: a path needs at least 2 tiles"); return; }
    const img = $("walk");
    img.onerror = async () => { try { await fetchOk(img.src); } catch (e) { fail(e); } };
    img.src = url("/api/interpolate", {t: state.path, frames: $("frames").value, method: $("method").value,
                                       label: state.label});
    img.hidden = false;
  }

  // -- arithmetic --------------------------------------------------------------------------------------------------
  function addToGroup(sign, ref) {
    let group = [...state.groups].reverse().find((g) => g.sign === sign);
    if (!group) { group = {sign, refs: []}; state.groups.push(group); }
    group.refs.push(ref);
    drawGroups();
  }
  function drawGroups() {
    const box = $("groups");
    box.innerHTML = "";
    state.groups.forEach((g) => {
      const row = document.createElement("div");
      row.className = "group";
      row.innerHTML = `<b>${g.sign > 0 ? "+" : "−"}</b>`;
      g.refs.forEach((ref, i) => row.appendChild(chip(ref, () => { g.refs.splice(i, 1); drawGroups(); save(); })));
      box.appendChild(row);
    });
    const params = {groups: groupsText(), label: state.label};
    $("sum-png").href = url("/api/arithmetic", {...params, download: 1});
    $("sum-npz").href = url("/api/arithmetic.npz", {...params, download: 1});
  }
  async function compute() {
    try {
      const blob = await (await fetchOk(url("/api/arithmetic", {groups: groupsText(), label: state.label}))).blob();
      const img = $("sum");
      img.src = URL.createObjectURL(blob);
      img.hidden = false;
    } catch (e) { fail(e); }
  }

  // -- projection ----------------------------------------------------------------------------------------------------
  async function upload(file) {
    const bar = $("progress"), status = $("project-state");
    try {
      const {job} = await json("/api/project", {method: "POST", body: file, headers: {"Content-Type": "application/octet-stream"}});
      bar.hidden = false;
      for (;;) {
        const s = await json(`/api/project/${job}`);
        bar.max = s.steps; bar.value = s.step;
        status.textContent = `step ${s.step} of ${s.steps}` + (s.loss === null ? "" : `, loss ${s.loss.toFixed(4)}`);
        if (s.error) throw new Error(s.error);
        if (s.done) {
          status.textContent = `projected in ${s.seconds.toFixed(1)} s (pixel error ${s.pixel_error.toFixed(3)})`;
          state.projected.push(s.ref);
          drawProjected();
          select(s.ref);
          break;
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    } catch (e) { fail(e); }
  }
  function drawProjected() {
    const box = $("projected");
    box.innerHTML = "";
    state.projected.forEach((ref) => box.appendChild(chip(ref, () => clicked(ref))));
  }

  // -- set-up ---------------------------------------------------------------------------------------------------------
  async function start() {
    try { info = await json("/api/info"); } catch (e) { fail(e); return; }
    load();
    $("title").textContent = info.name ? `ganforge explore · ${info.name}` : "ganforge explore";
    $("subtitle").textContent = `${info.family}, ${info.kind}, ${info.channels}×${info.resolution}×${info.resolution}` +
      (info.codes.length ? `, codes: ${info.codes.join("; ")}` : "");
    if (info.classes.length) {
      $("label-box").hidden = false;
      info.classes.forEach((c) => $("label").add(new Option(String(c), String(c))));
      $("label").value = state.label;
    }
    if (info.codes.length) {
      const box = $("codes-box");
      box.hidden = false;
      info.codes.forEach((name, i) => {
        const values = info.code_values[i];
        const field = document.createElement("label");
        const lo = Math.min(...values), hi = Math.max(...values);
        field.innerHTML = `${name} <input type="range" min="${lo}" max="${hi}" step="${info.categorical[i] ? 1 : 0.1}"` +
          ` data-code="${i}"><input type="checkbox" title="set this code" data-set="${i}">`;
        const range = field.querySelector("input[type=range]"), on = field.querySelector("input[type=checkbox]");
        range.value = state.codes[i] !== undefined ? state.codes[i] : 0;
        on.checked = state.codes[i] !== undefined;
        const apply = () => { if (on.checked) state.codes[i] = range.value; else delete state.codes[i]; loadGrid(); drawTile(); save(); };
        range.addEventListener("change", apply);
        on.addEventListener("change", apply);
        box.appendChild(field);
      });
    }
    if (info.layers.length) {
      $("maps-box").hidden = false;
      info.layers.forEach((l) => $("layer").add(new Option(`${l.name} (${l.maps} maps)`, l.name)));
      $("layer").value = state.layer;
      $("maps").value = state.maps;
    }
    $("sweep-button").hidden = !(info.classes.length || info.codes.length);
    $("seed").value = state.seed;
    $("psi").value = state.psi;
    $("psi-value").textContent = Number(state.psi).toFixed(2);
    $("seed").addEventListener("change", () => { state.seed = Math.max(0, Number($("seed").value) || 0); loadGrid(); save(); });
    $("reroll").addEventListener("click", () => { state.seed = Math.floor(Math.random() * 1e6); $("seed").value = state.seed; loadGrid(); save(); });
    $("psi").addEventListener("change", () => { state.psi = Number($("psi").value); loadGrid(); drawTile(); save(); });
    $("psi").addEventListener("input", () => { $("psi-value").textContent = Number($("psi").value).toFixed(2); });
    $("label").addEventListener("change", () => { state.label = $("label").value; loadGrid(); drawTile(); save(); });
    $("layer").addEventListener("change", () => { state.layer = $("layer").value; drawTile(); save(); });
    $("maps").addEventListener("change", () => { state.maps = $("maps").value; drawTile(); save(); });
    $("load-directions").addEventListener("click", loadDirections);
    $("sweep-button").addEventListener("click", sweep);
    $("tile-to-path").addEventListener("click", async () => { if (state.selected) { try { state.path.push(await asLatent(state.selected)); } catch (e) { fail(e); } drawPath(); save(); markCells(); } });
    $("tile-to-plus").addEventListener("click", async () => { if (state.selected) { try { addToGroup(1, await asLatent(state.selected)); } catch (e) { fail(e); } save(); } });
    $("tile-to-minus").addEventListener("click", async () => { if (state.selected) { try { addToGroup(-1, await asLatent(state.selected)); } catch (e) { fail(e); } save(); } });
    $("play").addEventListener("click", play);
    $("frames").addEventListener("change", drawPath);
    $("method").addEventListener("change", drawPath);
    $("clear-path").addEventListener("click", () => { state.path = []; drawPath(); save(); markCells(); });
    $("new-plus").addEventListener("click", () => { state.groups.push({sign: 1, refs: []}); drawGroups(); });
    $("new-minus").addEventListener("click", () => { state.groups.push({sign: -1, refs: []}); drawGroups(); });
    $("compute").addEventListener("click", compute);
    $("clear-groups").addEventListener("click", () => { state.groups = []; drawGroups(); save(); });
    $("upload").addEventListener("change", () => { if ($("upload").files[0]) upload($("upload").files[0]); });
    window.addEventListener("resize", () => layoutCells(gridColumns));
    await loadGrid();
    if (state.dirs.some((d) => d)) await loadDirections();
    if (state.selected) select(state.selected);
    drawPath();
    drawGroups();
    drawProjected();
  }
  window.ganforgeExplore = {state, ready: start()};
})();

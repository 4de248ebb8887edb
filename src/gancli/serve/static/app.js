// gancli serve: the page. Plain JS, no build step; it talks only to its own server's /api.
"use strict";

const PAGE_SIZE = 16;
const POLL_MS = 3000;
const FRAME_MS = 90;

const state = {
  models: [], model: null, page: 0, a: null, b: null,
  gridRequest: 0, walkTimer: null, version: null,
};

const $ = (id) => document.getElementById(id);

function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

async function getJSON(url) {
  const response = await fetch(url, { cache: "no-store" });
  const body = await response.json().catch(() => ({ error: `${response.status} ${response.statusText}` }));
  if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
  return body;
}

function modelPath(suffix) {
  return `/api/models/${encodeURIComponent(state.model.index)}/${suffix}`;
}

// ---------------------------------------------------------------- settings

function truncationValue() {
  const range = state.model.truncation;
  const value = parseFloat($("truncation").value);
  return range.off !== null && value >= range.off ? null : value;
}

function lookParams(extra) {
  const params = new URLSearchParams(extra || {});
  const t = truncationValue();
  if (t !== null) params.set("truncation", t.toFixed(2));
  if (state.model.num_classes && $("class").value) params.set("class", $("class").value);
  if (state.model.w_space) params.set("noise", $("noise").value);
  return params;
}

function showTruncation() {
  const t = truncationValue();
  $("truncation-value").textContent = t === null ? "off" : t.toFixed(2);
}

function fillSelect(select, options, keep) {
  const previous = keep ? select.value : null;
  select.replaceChildren(...options.map(([value, label]) => new Option(label, value)));
  if (previous !== null && options.some(([value]) => value === previous)) select.value = previous;
}

function setUpControls() {
  const m = state.model;
  const range = m.truncation;
  const slider = $("truncation");
  Object.assign(slider, { min: range.min, max: range.max, step: range.step });
  slider.value = range.default;
  $("truncation-name").textContent = range.name;
  showTruncation();
  $("class-control").hidden = !m.num_classes;
  if (m.num_classes) {
    const names = m.class_names.map((name, i) => [`#${i}`, name]);
    fillSelect($("class"), [["", "each seed its own class"], ...names]);
    fillSelect($("mix-from"), names);
    fillSelect($("mix-to"), names);
    if (names.length > 1) $("mix-to").value = names[1][0];
  }
  $("noise-control").hidden = !m.w_space;
  $("style-panel").hidden = !m.w_space;
  fillSelect($("styles"), (m.style_groups || []).map((g) => [g, g]));
  $("class-mix-panel").hidden = !(m.num_classes && m.class_mixtures);
  $("walk-how").textContent = m.w_space ? "Linear in W, as StyleGAN's path length." : "Spherical (slerp) in z.";
}

// ---------------------------------------------------------------- models

function describe(m) {
  if (!m.ready) return m.error ? `not loaded: ${m.error}` : "waiting for the run's first checkpoint";
  const parts = [m.family, `step ${m.step}`, m.kind === "image" ? `${m.resolution}²×${m.channels}` : "2-D points"];
  if (m.num_classes) parts.push(`${m.num_classes} classes`);
  if (m.w_space) parts.push("W space");
  if (m.ema) parts.push("EMA");
  return parts.join(" · ");
}

async function loadModels() {
  const body = await getJSON("/api/models");
  state.models = body.models;
  const select = $("model");
  fillSelect(select, body.models.map((m) => [String(m.index), `${m.index}: ${m.name}`]), true);
  return body.models;
}

function chooseModel(index) {
  state.model = state.models[index];
  state.version = state.model.version;
  state.page = 0;
  state.a = state.b = null;
  stopWalk();
  for (const id of ["style-mix-result", "walk-player"]) $(id).hidden = true;
  for (const id of ["class-mix-strip", "sweep-strip"]) $(id).replaceChildren();
  $("model-info").textContent = describe(state.model);
  if (!state.model.ready) {
    $("images-view").hidden = $("points-view").hidden = true;
    return;
  }
  const points = state.model.kind === "points";
  $("images-view").hidden = points;
  $("controls").hidden = points;
  $("points-view").hidden = !points;
  if (points) return showPoints();
  setUpControls();
  showPicks();
  return loadGrid();
}

async function poll() {
  try {
    const models = await loadModels();
    const current = state.model && models[state.model.index];
    if (current && current.version !== state.version) {
      const wasReady = state.model.ready;
      state.model = current;
      state.version = current.version;
      $("model-info").textContent = describe(current);
      $("status").textContent = `reloaded: step ${current.step}`;
      if (!wasReady) await chooseModel(current.index);
      else if (current.kind === "points") showPoints();
      else await loadGrid();
    } else if (current) {
      $("model-info").textContent = describe(current);
    }
  } catch (error) {
    $("status").textContent = `server unreachable (${error.message})`;
  }
}

// ---------------------------------------------------------------- the seed grid

async function loadGrid() {
  const ticket = ++state.gridRequest;  // a slower, older answer never overwrites a newer one
  const start = state.page * PAGE_SIZE;
  $("page-label").textContent = `seeds ${start}–${start + PAGE_SIZE - 1}`;
  $("prev").disabled = state.page === 0;
  try {
    const body = await getJSON(`${modelPath("grid")}?${lookParams({ start, count: PAGE_SIZE })}`);
    if (ticket !== state.gridRequest) return;
    showError("");
    drawGrid(body.images);
  } catch (error) {
    if (ticket === state.gridRequest) showError(error.message);
  }
}

function drawGrid(images) {
  const grid = $("grid");
  while (grid.children.length > images.length) grid.lastChild.remove();
  images.forEach((item, i) => {
    let tile = grid.children[i];
    if (!tile) {
      tile = document.createElement("figure");
      tile.className = "tile";
      tile.append(document.createElement("img"), document.createElement("figcaption"));
      tile.addEventListener("click", () => pick(Number(tile.dataset.seed)));
      grid.append(tile);
    }
    tile.dataset.seed = item.seed;
    tile.querySelector("img").src = item.src;
    tile.querySelector("img").alt = `seed ${item.seed}`;
    tile.querySelector("figcaption").textContent = item.class ? `${item.seed} · ${item.class}` : `seed ${item.seed}`;
  });
  markPicks();
}

function pick(seed) {
  if (state.a === null || state.b !== null) {
    state.a = seed;
    state.b = null;
  } else {
    state.b = seed;
  }
  showPicks();
}

function markPicks() {
  for (const tile of $("grid").children) {
    const seed = Number(tile.dataset.seed);
    tile.classList.toggle("pick-a", seed === state.a);
    tile.classList.toggle("pick-b", seed === state.b);
  }
}

function showPicks() {
  markPicks();
  $("pick-a").textContent = state.a === null ? "–" : `seed ${state.a}`;
  $("pick-b").textContent = state.b === null ? "–" : `seed ${state.b}`;
  const both = state.a !== null && state.b !== null;
  $("walk-button").disabled = !both;
  $("style-mix-button").disabled = !both || !(state.model.style_groups || []).length;
  $("class-mix-button").disabled = state.a === null;
  $("sweep-button").disabled = state.a === null;
  const link = $("download-a");
  link.hidden = state.a === null;
  if (state.a !== null) link.href = `${modelPath("image.png")}?${lookParams({ seed: state.a })}`;
}

// ---------------------------------------------------------------- walk, style mix, strips

function stopWalk() {
  if (state.walkTimer) clearInterval(state.walkTimer);
  state.walkTimer = null;
}

async function playWalk() {
  stopWalk();
  const frames = $("walk-frames").value;
  try {
    const body = await getJSON(`${modelPath("walk")}?${lookParams({ a: state.a, b: state.b, frames })}`);
    const player = $("walk-player");
    let i = 0, direction = 1;
    player.hidden = false;
    player.src = body.frames[0];
    state.walkTimer = setInterval(() => {  // there and back again
      if (i + direction < 0 || i + direction >= body.frames.length) direction = -direction;
      i += direction;
      player.src = body.frames[i];
    }, FRAME_MS);
    showError("");
  } catch (error) {
    showError(error.message);
  }
}

async function styleMix() {
  const params = lookParams({ source: state.a, destination: state.b, styles: $("styles").value });
  try {
    const body = await getJSON(`${modelPath("style-mix")}?${params}`);
    $("mix-source").src = body.source;
    $("mix-destination").src = body.destination;
    $("mix-result").src = body.mix;
    $("mix-caption").textContent = `B with A's ${body.styles} styles (w layers ${body.layers.join(", ")})`;
    $("style-mix-download").href = `${modelPath("style-mix.png")}?${params}`;
    $("style-mix-result").hidden = false;
    showError("");
  } catch (error) {
    showError(error.message);
  }
}

function drawStrip(target, frames, captions) {
  $(target).replaceChildren(...frames.map((src, i) => {
    const figure = document.createElement("figure");
    const image = document.createElement("img");
    const caption = document.createElement("figcaption");
    image.src = src;
    caption.textContent = captions[i];
    figure.append(image, caption);
    return figure;
  }));
}

async function classMix() {
  const params = lookParams({ seed: state.a, a: $("mix-from").value, b: $("mix-to").value, steps: 8 });
  params.delete("class");
  try {
    const body = await getJSON(`${modelPath("class-mix")}?${params}`);
    drawStrip("class-mix-strip", body.frames, body.weights.map((w) => `${Math.round(w * 100)}% ${body.to}`));
    showError("");
  } catch (error) {
    showError(error.message);
  }
}

async function sweep() {
  const params = lookParams({ seed: state.a });
  params.delete("truncation");
  try {
    const body = await getJSON(`${modelPath("truncation-sweep")}?${params}`);
    drawStrip("sweep-strip", body.frames, body.values.map((v) => `${state.model.truncation.name} ${v}`));
    showError("");
  } catch (error) {
    showError(error.message);
  }
}

function showPoints() {
  const stamp = `v=${state.model.version}`;  // a new checkpoint: a new picture
  $("points").src = `${modelPath("points.png")}?n=1024&seed=0#${stamp}`;
  $("lab-figure").hidden = !state.model.lab;
  if (state.model.lab) $("lab").src = `${modelPath("lab.gif")}#${stamp}`;
}

// ---------------------------------------------------------------- wiring

let gridTimer = null;
function gridSoon() {  // a dragged slider asks once it rests
  clearTimeout(gridTimer);
  gridTimer = setTimeout(() => { loadGrid(); showPicks(); }, 120);
}

async function start() {
  $("truncation").addEventListener("input", () => { showTruncation(); gridSoon(); });
  for (const id of ["class", "noise"]) $(id).addEventListener("change", () => { loadGrid(); showPicks(); });
  $("prev").addEventListener("click", () => { state.page = Math.max(0, state.page - 1); loadGrid(); });
  $("next").addEventListener("click", () => { state.page += 1; loadGrid(); });
  $("model").addEventListener("change", () => chooseModel(Number($("model").value)));
  $("walk-button").addEventListener("click", playWalk);
  $("style-mix-button").addEventListener("click", styleMix);
  $("class-mix-button").addEventListener("click", classMix);
  $("sweep-button").addEventListener("click", sweep);
  try {
    const models = await loadModels();
    if (!models.length) return showError("no models are served");
    await chooseModel(0);
  } catch (error) {
    showError(error.message);
  }
  setInterval(poll, POLL_MS);
}

start();

// hifield console front end: protocol card with live checks, job queue over SSE, viewer, exams and PACS.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = {
  options: null, parameters: [], card: null, cardSeq: 0, cardTimer: null, pending: false,
  exam: null, series: {}, slice: 0, window: 1, level: 0.5, zoom: 1, showError: false, knownDone: null, scannerYaml: null,
};

async function api(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  const type = response.headers.get("content-type") || "";
  const body = type.includes("application/json") ? await response.json() : null;
  if (!response.ok) {
    const message = body && body.error ? body.error : `${response.status} ${response.statusText}`;
    const error = new Error(message); error.body = body; error.status = response.status; throw error;
  }
  return body;
}

function fill(select, values, chosen) {
  select.innerHTML = "";
  for (const value of values) {
    const option = document.createElement("option");
    option.value = option.textContent = value;
    if (value === chosen) option.selected = true;
    select.appendChild(option);
  }
}

function fmt(value, digits = 3) {
  if (value === null || value === undefined) return "–";
  if (typeof value !== "number") return String(value);
  return Number(value.toPrecision(digits)).toString();
}

function fmtTime(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 60) return `${fmt(seconds, 3)} s`;
  const m = Math.floor(seconds / 60), s = Math.round(seconds - 60 * m);
  return `${m} min ${s} s`;
}

// ---------------------------------------------------------------- protocol card
async function init() {
  state.options = await api("/api/options");
  $("#server-status").textContent = `exams in ${state.options.exams_dir}`;
  fill($("#scanner"), [...state.options.scanners, "scanner YAML…"], "3T");
  $("#scanner").addEventListener("change", () => {
    $("#scanner-file").hidden = $("#scanner").value !== "scanner YAML…";
    if (!$("#scanner-file").hidden && !state.scannerYaml) $("#scanner-file").click();
  });
  $("#scanner-file").addEventListener("change", async () => {
    const file = $("#scanner-file").files[0];
    state.scannerYaml = file ? await file.text() : null;
    scheduleCard();
  });
  fill($("#phantom"), state.options.phantoms, "brain");
  fill($("#protocol"), state.options.protocols.map((p) => p.name), "gre_t1_2d");
  fill($("#mode"), state.options.modes, "normal");
  fill($("#pattern"), state.options.patterns, "variable-density");
  const recons = $("#recons");
  const checked = new Set(state.options.default_recons || state.options.recons);
  for (const name of state.options.recons) {
    const label = document.createElement("label");
    label.style.flexDirection = "row";
    label.innerHTML = `<input type="checkbox" value="${name}"${checked.has(name) ? " checked" : ""}> ${name}`;
    recons.appendChild(label);
  }
  for (const id of ["#scanner", "#phantom", "#mode", "#pattern", "#acceleration", "#n_calibration"]) {
    $(id).addEventListener("input", scheduleCard);
  }
  recons.addEventListener("change", scheduleCard);
  $("#protocol").addEventListener("change", loadProtocol);
  $("#start").addEventListener("click", start);
  initViewer();
  $("#pacs-form").addEventListener("submit", sendToPacs);
  await loadProtocol();
  connectEvents();
  await refreshExams();
}

async function loadProtocol() {
  const info = await api(`/api/protocols/${encodeURIComponent($("#protocol").value)}`);
  state.parameters = info.parameters;
  const body = $("#params tbody");
  body.innerHTML = "";
  for (const p of info.parameters) {
    const row = document.createElement("tr");
    row.dataset.key = p.key;
    let input;
    if (p.choices) {
      input = document.createElement("select");
      fill(input, p.choices, p.value);
    } else {
      input = document.createElement("input");
      input.type = "number";
      input.step = p.integer ? "1" : "any";
      input.value = p.value;
      input.title = `allowed ${p.low} to ${p.high}`;
    }
    input.dataset.key = p.key;
    input.className = "param";
    input.addEventListener("input", scheduleCard);
    const label = document.createElement("td"); label.className = "label"; label.textContent = p.label;
    const cell = document.createElement("td"); cell.appendChild(input);
    const error = document.createElement("div"); error.className = "param-error"; error.dataset.key = p.key;
    cell.appendChild(error);
    const unit = document.createElement("td"); unit.className = "unit"; unit.textContent = p.unit;
    row.append(label, cell, unit);
    body.appendChild(row);
  }
  scheduleCard();
}

function cardBody() {
  const params = {};
  for (const input of document.querySelectorAll(".param")) {
    const raw = input.value;
    if (input.tagName === "SELECT") params[input.dataset.key] = raw;
    else params[input.dataset.key] = raw.trim() === "" || isNaN(Number(raw)) ? raw : Number(raw);
  }
  const recons = [...document.querySelectorAll("#recons input:checked")].map((i) => i.value);
  const accel = Number($("#acceleration").value), ncal = Number($("#n_calibration").value);
  const custom = $("#scanner").value === "scanner YAML…";
  return {
    protocol: $("#protocol").value, field: custom ? "3T" : $("#scanner").value,
    scanner_yaml: custom ? state.scannerYaml || "" : null, phantom: $("#phantom").value,
    mode: $("#mode").value, pattern: $("#pattern").value, params, recons,
    acceleration: isNaN(accel) ? $("#acceleration").value : accel,
    n_calibration: isNaN(ncal) ? $("#n_calibration").value : ncal,
  };
}

function scheduleCard() {
  state.pending = true;
  $("#start").disabled = true;
  $("#card-state").textContent = "checking…";
  clearTimeout(state.cardTimer);
  state.cardTimer = setTimeout(evaluateCard, 300);
}

async function evaluateCard() {
  const seq = ++state.cardSeq;
  let card;
  try {
    card = await api("/api/card", { method: "POST", headers: { "content-type": "application/json" },
                                    body: JSON.stringify(cardBody()) });
  } catch (error) {
    card = { ok: false, errors: [{ key: null, message: error.message }], results: {}, mask: null };
  }
  if (seq !== state.cardSeq) return;  // a newer edit is on its way
  state.pending = false;
  state.card = card;
  showCard(card);
}

function showCard(card) {
  for (const node of document.querySelectorAll(".param-error")) node.innerHTML = "";
  for (const node of document.querySelectorAll(".param")) node.classList.remove("invalid");
  const general = [];
  for (const e of card.errors) {
    const slot = e.key ? document.querySelector(`.param-error[data-key="${e.key}"]`) : null;
    if (slot) {
      const unit = (state.parameters.find((p) => p.key === e.key) || {}).unit || "";
      const line = document.createElement("div");
      line.textContent = e.limit ? `${e.limit}: ` : "";
      if (e.passing !== null && e.passing !== undefined) {
        const pass = document.createElement("span");
        pass.className = "pass";
        pass.textContent = `passes at ${e.key} = ${fmt(e.passing, 4)} ${unit}`;
        line.appendChild(pass);
      } else {
        line.textContent += e.message;
      }
      line.title = e.message;
      slot.appendChild(line);
      document.querySelector(`.param[data-key="${e.key}"]`).classList.add("invalid");
    }
    if (!slot || e.limit) general.push(e.message);
  }
  const refusal = $("#refusal");
  const headline = card.errors.length ? card.errors[0].message : "";
  refusal.hidden = !card.errors.length;
  refusal.textContent = headline.startsWith("refused") ? headline : [...new Set(general.length ? general : [headline])].join("; ");
  $("#start").disabled = !card.ok;
  $("#card-state").textContent = card.ok ? "within every limit" : "refused: fix the parameters in red";
  const r = card.results || {};
  if (r.scan_time_s !== undefined) {
    $("#scan-time").textContent = fmtTime(r.scan_time_s);
    $("#scan-time").dataset.seconds = r.scan_time_s;
    $("#r-te").textContent = `${fmt(r.te_ms, 4)} / ${fmt(r.min_te_ms, 4)} ms`;
    $("#r-tr").textContent = `${fmt(r.tr_ms, 4)} / ${fmt(r.min_tr_ms, 4)} ms`;
    setResult("#r-sar-head", r.sar_head_w_per_kg, r.sar_head_limit_w_per_kg, "W/kg");
    setResult("#r-sar-body", r.sar_whole_body_w_per_kg, r.sar_whole_body_limit_w_per_kg, "W/kg");
    setResult("#r-pns", r.pns_percent, r.pns_limit_percent, "%");
    setResult("#r-grad", r.peak_gradient_mt_per_m, r.gradient_limit_mt_per_m, "mT/m");
    setResult("#r-slew", r.peak_slew_t_per_m_per_s, r.slew_limit_t_per_m_per_s, "T/m/s");
    $("#r-accel").textContent = r.acceleration !== undefined
      ? `R ${fmt(r.acceleration, 3)} (${r.lines_acquired}/${r.lines_full} ${r.axis === "readouts" ? "readouts" : "lines"})` : "–";
  }
  drawPattern(card.mask, r);
}

function setResult(id, value, limit, unit) {
  const cell = $(id);
  cell.textContent = `${fmt(value, 3)} ${unit} (limit ${fmt(limit, 3)})`;
  cell.classList.toggle("over", value > limit * (1 + 1e-6));
}

function drawPattern(mask, results) {
  const canvas = $("#pattern-picture");
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#0d1117"; ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (!mask) {
    $("#pattern-caption").textContent = results && results.pattern ? `${results.pattern} (non-Cartesian)` : "";
    return;
  }
  const rows = mask.length, cols = mask[0].length;
  canvas.width = cols; canvas.height = rows === 1 ? 48 : rows;
  const colours = ["#161b24", "#e8e8e8", "#ffa028"];
  for (let r = 0; r < (rows === 1 ? 1 : rows); r++) {
    for (let c = 0; c < cols; c++) {
      ctx.fillStyle = colours[mask[r][c]] || colours[0];
      ctx.fillRect(c, rows === 1 ? 0 : r, 1, rows === 1 ? canvas.height : 1);
    }
  }
  $("#pattern-caption").textContent =
    `${results.pattern}: ${results.lines_acquired} of ${results.lines_full} lines, ${results.calibration_lines} calibration (orange)`;
}

async function start() {
  $("#start").disabled = true;
  try {
    const job = await api("/api/jobs", { method: "POST", headers: { "content-type": "application/json" },
                                         body: JSON.stringify(cardBody()) });
    $("#card-state").textContent = `queued ${job.id}`;
  } catch (error) {
    $("#card-state").textContent = error.message;
    if (error.body && error.body.card) showCard(error.body.card);
  } finally {
    if (state.card && state.card.ok && !state.pending) $("#start").disabled = false;
  }
}

// ---------------------------------------------------------------- queue (server-sent events)
function connectEvents() {
  const source = new EventSource("/api/events");
  source.onmessage = (event) => showJobs(JSON.parse(event.data).jobs);
  source.onerror = () => { $("#server-status").textContent = "connection lost: retrying…"; };
  source.onopen = () => { $("#server-status").textContent = `exams in ${state.options.exams_dir}`; };
}

function showJobs(jobs) {
  if (state.knownDone === null) state.knownDone = new Set(jobs.filter((j) => j.state === "done").map((j) => j.id));
  const list = $("#jobs");
  list.innerHTML = "";
  for (const job of jobs) {
    const item = document.createElement("li");
    item.className = `job-${job.state}`;
    item.dataset.job = job.id;
    item.dataset.state = job.state;
    const what = job.state === "failed" ? job.message : job.state === "running" ? job.step : job.state;
    item.innerHTML = `<div><b></b> <span class="muted"></span></div><div class="msg"></div><div class="bar"><div></div></div>`;
    item.querySelector("b").textContent = job.title;
    item.querySelector("span").textContent = job.elapsed_s !== undefined ? `${job.elapsed_s} s` : "";
    item.querySelector(".msg").textContent = what;
    item.querySelector(".bar > div").style.width = `${Math.round(100 * job.progress)}%`;
    if (job.state === "done" && job.exam) {
      const open = document.createElement("button");
      open.textContent = "view"; open.onclick = () => openExam(job.exam);
      item.querySelector("div").appendChild(open);
      if (!state.knownDone.has(job.id)) { state.knownDone.add(job.id); openExam(job.exam); refreshExams(); }
    }
    list.appendChild(item);
  }
}

// ---------------------------------------------------------------- viewer
function initViewer() {
  $("#slice").addEventListener("input", () => { state.slice = Number($("#slice").value); loadSlices(); });
  $("#zoom").addEventListener("change", () => { state.zoom = Number($("#zoom").value); drawAll(); });
  $("#show-error").addEventListener("change", () => { state.showError = $("#show-error").checked; openExam(state.exam.id); });
  $("#wl-preset").addEventListener("change", () => applyPreset($("#wl-preset").value));
}

function applyPreset(name) {
  if (!state.exam) return;
  const ref = state.exam.reference_p995 || 1;
  const max = Math.max(...Object.values(state.exam.levels).map((l) => l.max)) || 1;
  const presets = {
    auto: [ref, ref / 2], full: [max, max / 2], contrast: [ref * 0.5, ref * 0.5], dark: [ref * 0.4, ref * 0.2],
  };
  [state.window, state.level] = presets[name] || presets.auto;
  drawAll();
}

async function openExam(id) {
  const exam = await api(`/api/exams/${encodeURIComponent(id)}`);
  const sameExam = state.exam && state.exam.id === id;
  state.exam = exam;
  const s = exam.summary;
  $("#viewer-title").textContent = `${id}: ${s.protocol} at ${s.field_t} T, ${s.matrix[0]}², R ${fmt(s.acceleration, 3)}`;
  const n = exam.shape ? exam.shape[0] : 1;
  $("#slice").max = n - 1;
  if (!sameExam) { state.slice = Math.floor(n / 2); applyPreset($("#wl-preset").value); }
  $("#slice").value = state.slice;
  const metrics = Object.fromEntries((s.reconstructions || []).map((m) => [m.method, m]));
  const names = exam.series.filter((n) => !n.startsWith("error-") || state.showError)
    .filter((n) => !(state.showError && !n.startsWith("error-") && n !== "truth"));
  const panels = $("#panels");
  panels.innerHTML = "";
  state.series = {};
  for (const name of names) {
    const box = document.createElement("div");
    box.className = "view-box";
    const canvas = document.createElement("canvas");
    canvas.className = "view";
    canvas.dataset.series = name;
    const caption = document.createElement("div");
    caption.className = "caption";
    const method = name.replace("error-", "");
    const m = metrics[method];
    caption.innerHTML = `<b></b><br><span></span>`;
    caption.querySelector("b").textContent = name.startsWith("error-") ? `|${method} − truth| ×4` : name;
    caption.querySelector("span").textContent = m && name !== "truth"
      ? `NMSE ${fmt(m.nmse, 3)} · PSNR ${fmt(m.psnr, 4)} dB · SSIM ${fmt(m.ssim, 3)}` : name === "truth" ? "fully sampled, noise-free" : "";
    box.append(canvas, caption);
    panels.appendChild(box);
    state.series[name] = { canvas, data: null, shape: null };
    attachMouse(canvas);
  }
  $("#mask-box").hidden = !exam.has_mask;
  if (exam.has_mask) $("#mask").src = `/api/exams/${encodeURIComponent(id)}/mask.png`;
  showExamFiles(exam);
  await loadSlices();
}

async function loadSlices() {
  if (!state.exam) return;
  $("#slice-label").textContent = `${state.slice + 1} / ${state.exam.shape ? state.exam.shape[0] : 1}`;
  const id = encodeURIComponent(state.exam.id);
  await Promise.all(Object.entries(state.series).map(async ([name, entry]) => {
    const response = await fetch(`/api/exams/${id}/slice?series=${encodeURIComponent(name)}&index=${state.slice}`);
    if (!response.ok) return;
    entry.shape = response.headers.get("X-Shape").split(",").map(Number);
    entry.data = new Float32Array(await response.arrayBuffer());
  }));
  drawAll();
}

function drawAll() {
  const gainFor = (name) => (name.startsWith("error-") ? 4 : 1);  // errors are small: shown 4x brighter
  for (const [name, entry] of Object.entries(state.series)) {
    if (!entry.data) continue;
    const [ny, nx] = entry.shape;
    const gain = gainFor(name);
    const low = (state.level - state.window / 2) / gain, width = Math.max(state.window / gain, 1e-12);
    const image = new ImageData(nx, ny);
    for (let i = 0; i < nx * ny; i++) {
      const v = Math.max(0, Math.min(255, ((entry.data[i] - low) / width) * 255));
      image.data[4 * i] = image.data[4 * i + 1] = image.data[4 * i + 2] = v;
      image.data[4 * i + 3] = 255;
    }
    const off = document.createElement("canvas");
    off.width = nx; off.height = ny;
    off.getContext("2d").putImageData(image, 0, 0);
    const size = Math.round(220 * state.zoom);
    const canvas = entry.canvas;
    canvas.width = size; canvas.height = Math.round(size * ny / nx);
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(off, 0, 0, canvas.width, canvas.height);
  }
  $("#wl-label").textContent = `W ${fmt(state.window, 3)} · L ${fmt(state.level, 3)} (drag: ↔ width, ↕ level)`;
}

function attachMouse(canvas) {
  let drag = null;
  canvas.addEventListener("mousedown", (e) => { drag = { x: e.clientX, y: e.clientY, w: state.window, l: state.level }; e.preventDefault(); });
  window.addEventListener("mouseup", () => { drag = null; });
  window.addEventListener("mousemove", (e) => {
    if (!drag) return;
    const ref = state.exam ? state.exam.reference_p995 || 1 : 1;
    state.window = Math.max(ref * 0.01, drag.w * Math.exp((e.clientX - drag.x) / 150));
    state.level = drag.l - ((e.clientY - drag.y) / 300) * ref;
    drawAll();
  });
  canvas.addEventListener("wheel", (e) => {
    if (!state.exam || !state.exam.shape) return;
    e.preventDefault();
    const n = state.exam.shape[0];
    const next = Math.max(0, Math.min(n - 1, state.slice + (e.deltaY > 0 ? 1 : -1)));
    if (next !== state.slice) { state.slice = next; $("#slice").value = next; loadSlices(); }
  }, { passive: false });
}

// ---------------------------------------------------------------- exams and PACS
async function refreshExams() {
  const exams = await api("/api/exams");
  const body = $("#exam-list tbody");
  body.innerHTML = "";
  for (const e of exams) {
    const row = document.createElement("tr");
    row.dataset.exam = e.id;
    for (const value of [e.id, e.protocol, `${e.field_t} T`, e.matrix ? `${e.matrix[0]}²` : "–", fmt(e.acceleration, 3), fmtTime(e.scan_time_s)]) {
      const cell = document.createElement("td"); cell.textContent = value; row.appendChild(cell);
    }
    const cell = document.createElement("td");
    const open = document.createElement("button"); open.textContent = "open"; open.onclick = () => openExam(e.id);
    cell.appendChild(open); row.appendChild(cell);
    body.appendChild(row);
  }
}

function showExamFiles(exam) {
  $("#exam-detail").hidden = false;
  $("#exam-name").textContent = exam.id;
  const list = $("#files");
  list.innerHTML = "";
  for (const f of exam.files) {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = `/api/exams/${encodeURIComponent(exam.id)}/files/${f.path.split("/").map(encodeURIComponent).join("/")}`;
    link.textContent = f.path;
    link.setAttribute("download", "");
    item.append(`${f.kind}: `, link, ` (${fmt(f.bytes / 1024, 3)} KiB)`);
    list.appendChild(item);
  }
  $("#pacs-result").textContent = "";
}

async function sendToPacs(event) {
  event.preventDefault();
  if (!state.exam) return;
  const result = $("#pacs-result");
  result.className = ""; result.textContent = "sending…";
  try {
    const report = await api(`/api/exams/${encodeURIComponent(state.exam.id)}/pacs`, {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ host: $("#pacs-host").value, port: Number($("#pacs-port").value), called_aet: $("#pacs-aet").value }),
    });
    result.className = report.ok ? "ok" : "bad";
    result.textContent = report.summary;
  } catch (error) {
    result.className = "bad";
    result.textContent = `not sent: ${error.message}`;
  }
}

init().catch((error) => { $("#server-status").textContent = `error: ${error.message}`; });

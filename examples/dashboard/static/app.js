// The live dashboard page: one WebSocket to /live, charts drawn on canvases, no library.
//
// The server publishes one sample ten times a second on a topic with history; each frame is
// the topic's envelope (docs/realtime.md):
//   {"epoch": E, "offset": N, "topic": "dashboard", "data": {"t": <ms>, <series>: <value>, ...}}
// The page keeps the epoch and offset of the last sample it drew. When the connection drops
// it reconnects with ?epoch=E&offset=N and the server sends what came after N, then goes on
// live: no gap and no sample twice. When the server no longer holds those (it restarted, or
// the page was away longer than the minute it keeps) it sends {"type": "reset"} first and
// then the minute it holds, and the page starts its charts over.
"use strict";

const WINDOW_MS = 60_000;     // what the charts show
const MAX_SAMPLES = 700;      // a little more than a minute at 10 Hz
const COLORS = ["--s0", "--s1", "--s2"];

const state = {
  samples: [],          // oldest first
  epoch: null,
  offset: null,
  ws: null,
  retry: 0,
  dirty: false,
  offsets: [],          // the offsets of state.samples
  recovered: 0,         // samples replayed after reconnects
  reconnects: 0,
  resets: 0,
  outOfOrder: 0,        // offsets that did not follow the last one (never, unless broken)
};

const statusEl = document.getElementById("status");
const viewersEl = document.getElementById("viewers");
const samplesEl = document.getElementById("samples");
const recoveredEl = document.getElementById("recovered");
const charts = Array.from(document.querySelectorAll(".chart")).map((el) => ({
  el,
  canvas: el.querySelector("canvas"),
  now: el.querySelector(".now"),
  series: el.dataset.series.split(","),
  unit: el.dataset.unit,
  max: el.dataset.max ? Number(el.dataset.max) : null,
  maxFrom: el.dataset.maxFrom || null,
}));

function setStatus(kind, text) {
  statusEl.dataset.state = kind;
  statusEl.textContent = text;
}

function url() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  let u = `${scheme}//${location.host}/live`;
  if (state.epoch !== null && state.offset !== null) {
    u += `?epoch=${encodeURIComponent(state.epoch)}&offset=${state.offset}`;
  }
  return u;
}

function connect() {
  setStatus("connecting", state.reconnects ? "reconnecting…" : "connecting…");
  const ws = new WebSocket(url());
  state.ws = ws;
  // Until the first live sample, what arrives after a reconnect is what was missed.
  let replaying = state.offset !== null;
  const openedAt = Date.now();
  ws.onopen = () => {
    state.retry = 0;
    setStatus("live", "live");
  };
  ws.onmessage = (event) => {
    let msg;
    try {
      msg = JSON.parse(event.data);
    } catch (e) {
      return;
    }
    if (msg.type === "reset") {
      state.samples = [];
      state.offsets = [];
      state.epoch = null;
      state.offset = null;
      state.resets += 1;
      replaying = false;
      state.dirty = true;
    } else if (typeof msg.offset === "number" && msg.data) {
      // A sample taken before this connection opened was missed while away.
      if (replaying && msg.data.t >= openedAt) replaying = false;
      add(msg.epoch, msg.offset, msg.data, replaying);
    }
  };
  ws.onclose = () => {
    if (state.ws !== ws) return;
    state.ws = null;
    state.reconnects += 1;
    setStatus("offline", "offline, reconnecting");
    const delay = Math.min(15_000, 500 * 2 ** state.retry) * (0.75 + Math.random() * 0.5);
    state.retry = Math.min(state.retry + 1, 5);
    setTimeout(connect, delay);
  };
}

function add(epoch, offset, sample, replayed) {
  if (state.epoch === epoch && state.offset !== null && offset !== state.offset + 1) {
    // The server sends each offset once, in order: anything else is counted, for the test
    // and for whoever reads the console.
    state.outOfOrder += 1;
    console.warn(`sample ${offset} after ${state.offset}`);
    if (offset <= state.offset) return;
  }
  state.epoch = epoch;
  state.offset = offset;
  state.offsets.push(offset);
  if (state.offsets.length > MAX_SAMPLES) state.offsets.splice(0, state.offsets.length - MAX_SAMPLES);
  state.samples.push(sample);
  if (state.samples.length > MAX_SAMPLES) state.samples.splice(0, state.samples.length - MAX_SAMPLES);
  if (replayed) state.recovered += 1;
  if (typeof sample.viewers === "number") viewersEl.textContent = `${sample.viewers} watching`;
  state.dirty = true;
}

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function draw(chart, samples, tEnd) {
  const c = chart.canvas;
  const ratio = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(c.clientWidth * ratio));
  const h = Math.max(1, Math.round(c.clientHeight * ratio));
  if (c.width !== w || c.height !== h) {
    c.width = w;
    c.height = h;
  }
  const g = c.getContext("2d");
  g.clearRect(0, 0, w, h);
  const last = samples[samples.length - 1];
  let top = chart.max;
  if (top === null && chart.maxFrom && last) top = last[chart.maxFrom];
  if (top === null || !(top > 0)) {
    top = 0;
    for (const s of samples) for (const k of chart.series) top = Math.max(top, s[k] || 0);
    top = top > 0 ? top * 1.15 : 1;
  }
  g.strokeStyle = cssVar("--grid");
  g.lineWidth = 1;
  for (let i = 1; i < 4; i++) {
    const y = Math.round((h * i) / 4) + 0.5;
    g.beginPath();
    g.moveTo(0, y);
    g.lineTo(w, y);
    g.stroke();
  }
  const tStart = tEnd - WINDOW_MS;
  chart.series.forEach((key, i) => {
    g.strokeStyle = cssVar(COLORS[i % COLORS.length]);
    g.lineWidth = 2 * ratio;
    g.beginPath();
    let started = false;
    for (const s of samples) {
      if (s.t < tStart || typeof s[key] !== "number") continue;
      const x = ((s.t - tStart) / WINDOW_MS) * w;
      const y = h - (Math.min(s[key], top) / top) * (h - 2 * ratio) - ratio;
      if (started) g.lineTo(x, y);
      else g.moveTo(x, y);
      started = true;
    }
    g.stroke();
  });
  if (last) {
    chart.now.textContent = chart.series
      .map((k) => (typeof last[k] === "number" ? `${last[k]}` : "–"))
      .join(" / ") + (chart.unit ? ` ${chart.unit}` : "");
  }
}

function frame() {
  if (state.dirty) {
    state.dirty = false;
    const samples = state.samples;
    const tEnd = samples.length ? samples[samples.length - 1].t : Date.now();
    for (const chart of charts) draw(chart, samples, tEnd);
    samplesEl.textContent = `${samples.length} samples`;
    recoveredEl.textContent = state.reconnects
      ? `${state.reconnects} reconnect(s), ${state.recovered} sample(s) recovered`
      : "";
  }
  requestAnimationFrame(frame);
}

// What a test (or a curious reader of the console) can ask of the page.
window.dashboard = {
  state,
  cut() {
    // Drops the connection the way a network does, to show recovery.
    if (state.ws) state.ws.close(4000, "cut by the page");
  },
};

window.addEventListener("resize", () => { state.dirty = true; });
connect();
requestAnimationFrame(frame);

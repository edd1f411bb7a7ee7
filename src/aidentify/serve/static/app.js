// AIdentify's page: a photo labelled by POST /api/predict, the browser's camera labelled over
// the WebSocket /ws/live, and the server's own feed at /stream.mjpg. No libraries, no CDN.
// What the page shows is also kept in window.aidentify (read by the end-to-end test).
"use strict";

const COLOURS = {  // the overlay's colours (live/draw.py), as CSS
  neutral: "rgb(200,200,200)", happiness: "rgb(60,200,60)", surprise: "rgb(255,200,0)",
  sadness: "rgb(40,120,200)", anger: "rgb(230,40,40)", disgust: "rgb(100,140,40)",
  fear: "rgb(180,60,180)", contempt: "rgb(160,90,120)",
};
const colourFor = (label) => COLOURS[label] || "rgb(160,160,160)";
const $ = (id) => document.getElementById(id);

const state = window.aidentify = {
  models: [],
  photo: { status: "empty", answer: null, error: null, hovered: null },
  camera: { status: "off", frames: 0, faces: 0, fps: 0, error: null, answer: null },
  stream: { status: document.body.dataset.stream === "yes" ? "idle" : "none" },
};

// ------------------------------------------------------------------------- models and health
async function loadModels() {
  const select = $("model");
  try {
    const answer = await (await fetch("/api/models")).json();
    state.models = answer.models;
    select.replaceChildren(...answer.models.map((m) => new Option(m.name, m.name)));
    showModelInfo();
    const health = await (await fetch("/api/health")).json();
    $("health").textContent = `${health.status} · detector ${health.detector}`;
  } catch (err) {
    $("health").textContent = `server not reachable (${err})`;
  }
}

function showModelInfo() {
  const model = state.models.find((m) => m.name === $("model").value);
  if (!model) return;
  const acc = model.accuracy ? ` · ${(model.accuracy.accuracy * 100).toFixed(1)}% on ${model.accuracy.dataset}` : "";
  $("model-info").textContent = `${model.classes.length} classes · ${model.input_size} px${acc}`;
}

$("model").addEventListener("change", () => {
  showModelInfo();
  if (state.photo.file) predictPhoto(state.photo.file);
  if (camera.socket) camera.reconnect();
});

// ------------------------------------------------------------------------------------- tabs
function showView(name) {
  for (const tab of document.querySelectorAll("nav [role=tab]")) tab.setAttribute("aria-selected", tab.dataset.view === name);
  for (const view of document.querySelectorAll(".view")) view.hidden = view.dataset.view !== name;
  const img = $("stream-img");
  if (img) {  // the server labels its feed only while someone watches
    img.src = name === "stream" ? img.dataset.src : "";
    state.stream.status = name === "stream" ? "watching" : "idle";
  }
}
for (const tab of document.querySelectorAll("nav [role=tab]")) tab.addEventListener("click", () => showView(tab.dataset.view));

// ------------------------------------------------------------------------------- drawing
// Label placement follows src/aidentify/live/layout.py rule for rule (the live overlay's layout):
// faces largest first; each label tries above its box, below it, inside its top edge (moved sideways
// into the frame) and takes the first spot inside the frame that covers no placed label and no other
// face; else the free spot (anchors and the edges of placed labels, moved into the frame) with the
// least |dx| + |dy| from the first anchor + hidden area of other faces / label height; else none.
// Rectangles are [x, y, w, h] in image pixels; touching edges do not overlap.
const overlaps = (a, b) => a[0] < b[0] + b[2] && b[0] < a[0] + a[2] && a[1] < b[1] + b[3] && b[1] < a[1] + a[3];
const clamp = (v, upper) => Math.max(0, Math.min(v, upper));
const labelAnchors = ([x, y, , bh], w, h) => [[x, y - h], [x, y + bh], [x, y]];

function covered(rect, boxes) {  // pixels of boxes the rectangle hides
  let area = 0;
  for (const b of boxes) {
    const dx = Math.min(rect[0] + rect[2], b[0] + b[2]) - Math.max(rect[0], b[0]);
    const dy = Math.min(rect[1] + rect[3], b[1] + b[3]) - Math.max(rect[1], b[1]);
    area += Math.max(dx, 0) * Math.max(dy, 0);
  }
  return area;
}

function placeOne(w, h, width, height, spots, placed, others) {
  for (const [x, y] of spots) {
    const rect = [clamp(x, width - w), y, w, h];
    if (rect[1] >= 0 && rect[1] + h <= height && ![...placed, ...others].some((r) => overlaps(rect, r))) return rect;
  }
  const x0 = clamp(spots[0][0], width - w), y0 = clamp(spots[0][1], height - h);
  const xs = new Set(spots.map(([x]) => clamp(x, width - w))), ys = new Set(spots.map(([, y]) => clamp(y, height - h)));
  for (const r of placed) {
    for (const x of [r[0] - w, r[0] + r[2], r[0], r[0] + r[2] - w]) xs.add(clamp(x, width - w));
    for (const y of [r[1] - h, r[1] + r[3]]) ys.add(clamp(y, height - h));
  }
  const byValue = (a, b) => a - b;
  let best = null, bestCost = Infinity;
  for (const y of [...ys].sort(byValue)) {  // equal costs: the lowest y, then the lowest x wins
    for (const x of [...xs].sort(byValue)) {
      const rect = [x, y, w, h];
      if (placed.some((r) => overlaps(rect, r))) continue;
      const cost = Math.abs(x - x0) + Math.abs(y - y0) + covered(rect, others) / h;
      if (cost < bestCost) { best = rect; bestCost = cost; }
    }
  }
  return best;
}

function placeLabels(boxes, sizes, width, height) {  // one [x, y, w, h] (or null) per box, in the boxes' order
  const order = boxes.map((_, i) => i).sort((i, j) => boxes[j][2] * boxes[j][3] - boxes[i][2] * boxes[i][3] || i - j);
  const placed = [], result = boxes.map(() => null);
  for (const i of order) {
    const w = Math.min(sizes[i][0], width), h = Math.min(sizes[i][1], height);
    const others = boxes.filter((_, j) => j !== i);
    result[i] = placeOne(w, h, width, height, labelAnchors(boxes[i], w, h), placed, others);
    if (result[i]) placed.push(result[i]);
  }
  return result;
}

// Boxes and labels over an image of width x height pixels shown at `scale` screen pixels per image pixel.
// Each label starts with the face's number: its row in the face list. Returns the label rectangles.
function drawFaces(ctx, faces, scale, highlighted, width, height) {
  const line = Math.max(2, Math.round(3 / scale));
  const fontPx = Math.max(12, Math.round(15 / scale));
  ctx.font = `${fontPx}px system-ui, sans-serif`;
  ctx.textBaseline = "top";
  const texts = faces.map((face, i) => `${i + 1}. ${face.label} ${(face.confidence * 100).toFixed(0)}%`);
  const sizes = texts.map((text) => [Math.ceil(ctx.measureText(text).width) + 8, fontPx + 6]);
  const rects = placeLabels(faces.map((face) => face.box), sizes, width, height);
  faces.forEach((face) => {
    const [x, y, w, h] = face.box;
    ctx.lineWidth = face === highlighted ? line * 2 : line;
    ctx.strokeStyle = colourFor(face.label);
    ctx.strokeRect(x, y, w, h);
  });
  faces.forEach((face, i) => {
    if (!rects[i]) return;
    const [x, y, w, h] = rects[i];
    ctx.fillStyle = colourFor(face.label);
    ctx.fillRect(x, y, w, h);
    ctx.fillStyle = "#000";
    ctx.fillText(texts[i], x + 4, y + 3);
  });
  return rects.map((rect, i) => rect && { number: i + 1, text: texts[i], rect });
}

function showBars(container, face, classes) {
  if (!face) { container.replaceChildren(); return; }
  const rows = classes.map((name) => {
    const p = face.probabilities[name] || 0;
    const row = document.createElement("div");
    row.className = "bar";
    row.dataset.label = name;
    row.innerHTML = `<span class="name"></span><span class="track"><span class="fill"></span></span><span class="value"></span>`;
    row.querySelector(".name").textContent = name;
    row.querySelector(".fill").style.width = `${(p * 100).toFixed(1)}%`;
    row.querySelector(".fill").style.background = colourFor(name);
    row.querySelector(".value").textContent = `${(p * 100).toFixed(0)}%`;
    return row;
  });
  container.replaceChildren(...rows);
}

// ---------------------------------------------------------------------------------- photo
const photo = { image: null };

async function predictPhoto(file) {
  state.photo = { status: "working", answer: null, error: null, hovered: null, file };
  $("photo-status").textContent = `Labelling ${file.name}…`;
  const image = new Image();
  image.src = URL.createObjectURL(file);
  try { await image.decode(); } catch { image.src = ""; }
  photo.image = image.src ? image : null;
  const form = new FormData();
  form.append("image", file);
  form.append("model", $("model").value);
  let answer;
  try {
    const response = await fetch("/api/predict", { method: "POST", body: form });
    answer = await response.json();
    if (!response.ok) throw new Error(answer.error || response.statusText);
  } catch (err) {
    state.photo.status = "error";
    state.photo.error = String(err.message || err);
    $("photo-status").textContent = `Error: ${state.photo.error}`;
    return;
  }
  state.photo.answer = answer;
  state.photo.status = "done";
  const n = answer.faces.length;
  $("photo-status").textContent = `${n} face${n === 1 ? "" : "s"} in ${answer.image.width}×${answer.image.height} ` +
    `(${answer.timings_ms.total.toFixed(0)} ms, model ${answer.model})`;
  const list = $("photo-faces");
  list.replaceChildren(...answer.faces.map((face, i) => {
    const item = document.createElement("li");
    item.dataset.label = face.label;
    item.textContent = `${face.label} ${(face.confidence * 100).toFixed(0)}%`;  // the <ol> numbers it as its box
    item.addEventListener("mouseenter", () => highlight(face));
    return item;
  }));
  renderPhoto(answer.faces[0] || null);
}

function renderPhoto(highlighted) {
  const answer = state.photo.answer;
  const canvas = $("photo-canvas");
  if (!answer) return;
  canvas.width = answer.image.width;
  canvas.height = answer.image.height;
  const ctx = canvas.getContext("2d");
  if (photo.image) ctx.drawImage(photo.image, 0, 0, canvas.width, canvas.height);
  else { ctx.fillStyle = "#333"; ctx.fillRect(0, 0, canvas.width, canvas.height); }
  canvas.hidden = false;
  const labels = drawFaces(ctx, answer.faces, canvas.clientWidth ? canvas.clientWidth / canvas.width : 1, highlighted,
    canvas.width, canvas.height);
  state.photo.labels = labels;
  canvas.dataset.labelRects = JSON.stringify(labels);
  canvas.dataset.faces = String(answer.faces.length);
  canvas.dataset.labels = answer.faces.map((f) => f.label).join(",");
  $("drop").classList.add("small");
  showBars($("photo-bars"), highlighted, answer.classes);
}

function highlight(face) {
  if (face === state.photo.hovered) return;
  state.photo.hovered = face;
  renderPhoto(face || state.photo.answer.faces[0] || null);
}

$("photo-canvas").addEventListener("mousemove", (event) => {
  const answer = state.photo.answer;
  if (!answer) return;
  const canvas = event.currentTarget;
  const x = event.offsetX * canvas.width / canvas.clientWidth, y = event.offsetY * canvas.height / canvas.clientHeight;
  const under = answer.faces.filter(({ box: [bx, by, bw, bh] }) => x >= bx && x <= bx + bw && y >= by && y <= by + bh)
    .sort((a, b) => a.box[2] * a.box[3] - b.box[2] * b.box[3]);
  if (under.length) highlight(under[0]);
});

$("file").addEventListener("change", (event) => { if (event.target.files[0]) predictPhoto(event.target.files[0]); });
const drop = $("drop");
for (const name of ["dragenter", "dragover"]) drop.addEventListener(name, (e) => { e.preventDefault(); drop.classList.add("over"); });
for (const name of ["dragleave", "drop"]) drop.addEventListener(name, (e) => { e.preventDefault(); drop.classList.remove("over"); });
drop.addEventListener("drop", (event) => { const file = event.dataTransfer.files[0]; if (file) predictPhoto(file); });

// --------------------------------------------------------------------------------- camera
const camera = {
  socket: null, stream: null, grab: document.createElement("canvas"), answer: null, last: 0, running: false,

  async start() {
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
    } catch (err) {
      this.fail(`no camera: ${err.message || err}`);
      return;
    }
    const video = $("camera-video");
    video.srcObject = this.stream;
    await video.play();
    this.running = true;
    $("camera-start").disabled = true;
    $("camera-stop").disabled = false;
    state.camera.status = "connecting";
    this.connect();
    requestAnimationFrame(() => this.render());
  },

  connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/ws/live?model=${encodeURIComponent($("model").value)}`);
    socket.binaryType = "arraybuffer";
    socket.onopen = () => { state.camera.status = "running"; this.send(); };
    socket.onmessage = (event) => this.receive(JSON.parse(event.data));
    socket.onclose = () => { if (this.socket === socket) { this.socket = null; if (this.running) this.fail("connection closed"); } };
    this.socket = socket;
  },

  reconnect() {
    const old = this.socket;
    this.socket = null;
    if (old) old.close();
    if (this.running) this.connect();
  },

  send() {  // one frame in flight at a time: the next one leaves when this one's answer arrives
    const video = $("camera-video");
    if (!this.running || !this.socket || this.socket.readyState !== WebSocket.OPEN || !video.videoWidth) {
      if (this.running) setTimeout(() => this.send(), 50);
      return;
    }
    const scale = Math.min(1, 640 / video.videoWidth);
    this.grab.width = Math.round(video.videoWidth * scale);
    this.grab.height = Math.round(video.videoHeight * scale);
    this.grab.getContext("2d").drawImage(video, 0, 0, this.grab.width, this.grab.height);
    this.grab.toBlob((blob) => { if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(blob); },
      "image/jpeg", 0.8);
  },

  receive(answer) {
    const now = performance.now();
    if (answer.error) {
      state.camera.error = answer.error;
    } else {
      this.answer = answer;
      state.camera.answer = answer;
      state.camera.frames += 1;
      state.camera.faces = answer.faces.length;
      if (this.last) state.camera.fps = state.camera.fps ? 0.8 * state.camera.fps + 0.2 * 1000 / (now - this.last) : 1000 / (now - this.last);
      this.last = now;
      const canvas = $("camera-canvas");
      canvas.dataset.frames = String(state.camera.frames);
      canvas.dataset.faces = String(answer.faces.length);
      canvas.dataset.labels = answer.faces.map((f) => f.label).join(",");
      $("camera-status").textContent = `${answer.faces.length} face${answer.faces.length === 1 ? "" : "s"} · ` +
        `${state.camera.fps.toFixed(1)} frames/s · frame ${state.camera.frames}`;
      showBars($("camera-bars"), answer.faces[0] || null, answer.classes);
    }
    this.send();
  },

  render() {  // the live video with the newest answer's boxes, at the display's rate
    if (!this.running) return;
    const video = $("camera-video"), canvas = $("camera-canvas");
    if (video.videoWidth) {
      if (canvas.width !== video.videoWidth) { canvas.width = video.videoWidth; canvas.height = video.videoHeight; }
      const ctx = canvas.getContext("2d");
      ctx.drawImage(video, 0, 0);
      if (this.answer) {
        const k = canvas.width / this.answer.image.width;
        ctx.save();
        ctx.scale(k, k);
        state.camera.labels = drawFaces(ctx, this.answer.faces, k * (canvas.clientWidth / canvas.width || 1), null,
          this.answer.image.width, this.answer.image.height);
        ctx.restore();
      }
    }
    requestAnimationFrame(() => this.render());
  },

  stop() {
    this.running = false;
    const socket = this.socket;
    this.socket = null;
    if (socket) socket.close();
    if (this.stream) for (const track of this.stream.getTracks()) track.stop();
    this.stream = null;
    state.camera.status = "off";
    $("camera-start").disabled = false;
    $("camera-stop").disabled = true;
    $("camera-status").textContent = "Camera off.";
  },

  fail(message) {
    state.camera.error = message;
    state.camera.status = "error";
    $("camera-status").textContent = `Error: ${message}`;
    if (this.running) this.stop();
    state.camera.status = "error";
    $("camera-status").textContent = `Error: ${message}`;
  },
};

$("camera-start").addEventListener("click", () => camera.start());
$("camera-stop").addEventListener("click", () => camera.stop());

loadModels();

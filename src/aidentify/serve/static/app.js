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
function drawFaces(ctx, faces, scale, highlighted) {
  const line = Math.max(2, Math.round(3 / scale));
  ctx.font = `${Math.max(12, Math.round(15 / scale))}px system-ui, sans-serif`;
  ctx.textBaseline = "top";
  for (const face of faces) {
    const [x, y, w, h] = face.box;
    const colour = colourFor(face.label);
    ctx.lineWidth = face === highlighted ? line * 2 : line;
    ctx.strokeStyle = colour;
    ctx.strokeRect(x, y, w, h);
    const text = `${face.label} ${(face.confidence * 100).toFixed(0)}%`;
    const tw = ctx.measureText(text).width + 8, th = parseInt(ctx.font, 10) + 6;
    const top = y - th >= 0 ? y - th : y;
    ctx.fillStyle = colour;
    ctx.fillRect(x, top, tw, th);
    ctx.fillStyle = "#000";
    ctx.fillText(text, x + 4, top + 3);
  }
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
    item.textContent = `${face.label} ${(face.confidence * 100).toFixed(0)}%`;
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
  drawFaces(ctx, answer.faces, canvas.clientWidth ? canvas.clientWidth / canvas.width : 1, highlighted);
  canvas.hidden = false;
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
        drawFaces(ctx, this.answer.faces, k * (canvas.clientWidth / canvas.width || 1), null);
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

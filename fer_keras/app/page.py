"""The web service's demo page: the webcam (or a dropped image) with boxes, labels and per-class bars."""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fer_keras: facial emotion recognition</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 1.5rem; background: #f4f4f4; color: #222; }
  h1 { font-size: 1.3rem; margin: 0 0 .3rem; }
  p { margin: .2rem 0 .8rem; }
  #controls { display: flex; gap: .6rem; align-items: center; flex-wrap: wrap; margin-bottom: .8rem; }
  button, label.file { padding: .45rem .9rem; border: 1px solid #888; border-radius: 4px; background: #fff; cursor: pointer; }
  #view { max-width: 100%; background: #333; border-radius: 4px; }
  #drop { border: 2px dashed #999; border-radius: 4px; padding: .5rem 1rem; }
  #drop.over { border-color: #06c; background: #e8f0fe; }
  #faces { font-size: 1.05rem; margin-top: .6rem; min-height: 1.4rem; }
  #status { color: #666; }
</style>
</head>
<body>
<h1>fer_keras: facial emotion recognition</h1>
<p>Start the camera, or drop an image here. Frames go to <code>POST /v1/analyze</code>; the API is described at <a href="/docs">/docs</a>.</p>
<div id="controls">
  <button id="start">Start camera</button>
  <button id="stop" disabled>Stop</button>
  <label class="file">Choose image <input id="file" type="file" accept="image/jpeg,image/png,image/webp" hidden></label>
  <span id="drop">drop an image</span>
  <span id="status"></span>
</div>
<canvas id="view" width="640" height="480"></canvas>
<div id="faces"></div>
<!-- not display:none: a hidden video element is not decoded, and its frames would draw black -->
<video id="camera" autoplay muted playsinline style="position:absolute; left:0; top:0; width:2px; height:2px; opacity:0"></video>
<script>
const COLORS = {angry: "#dc2828", disgust: "#288c28", fear: "#a03ca0", happy: "#f0c828",
                sad: "#2878c8", surprise: "#faa028", neutral: "#b4b4b4", contempt: "#283c78"};
const view = document.getElementById("view"), ctx = view.getContext("2d");
const video = document.getElementById("camera"), status = document.getElementById("status");
const facesBox = document.getElementById("faces");
const grab = document.createElement("canvas");
let stream = null;

function show(image, result) {
  view.width = image.width || image.videoWidth; view.height = image.height || image.videoHeight;
  ctx.drawImage(image, 0, 0, view.width, view.height);
  const names = [];
  for (const face of result.faces) {
    const b = face.box, color = COLORS[face.label] || "#fff";
    ctx.lineWidth = 3; ctx.strokeStyle = color; ctx.strokeRect(b.x, b.y, b.w, b.h);
    const text = face.label + " " + Math.round(100 * face.confidence) + "%";
    ctx.font = "bold 18px system-ui, sans-serif";
    const width = ctx.measureText(text).width + 10;
    ctx.fillStyle = color; ctx.fillRect(b.x, Math.max(b.y - 26, 0), width, 24);
    ctx.fillStyle = "#000"; ctx.fillText(text, b.x + 5, Math.max(b.y - 8, 18));
    // per-class panel beside the face: full name, bar, percentage
    const rowH = 18, panelW = 200, panelH = rowH * Object.keys(face.probs).length + 8;
    let px = b.x + b.w + 8; if (px + panelW > view.width) px = Math.max(b.x - panelW - 8, 0);
    const py = Math.min(Math.max(b.y, 0), Math.max(view.height - panelH, 0));
    ctx.fillStyle = "rgba(0,0,0,0.7)"; ctx.fillRect(px, py, panelW, panelH);
    ctx.font = "14px system-ui, sans-serif";
    Object.entries(face.probs).forEach(([name, p], i) => {
      const y = py + 6 + i * rowH;
      ctx.fillStyle = "#fff"; ctx.fillText(name, px + 6, y + 13);
      ctx.fillStyle = COLORS[name]; ctx.fillRect(px + 78, y + 3, Math.round(80 * p), 11);
      ctx.strokeStyle = "#777"; ctx.lineWidth = 1; ctx.strokeRect(px + 78, y + 3, 80, 11);
      ctx.fillStyle = "#fff"; ctx.fillText(Math.round(100 * p) + "%", px + 164, y + 13);
    });
    names.push(text);
  }
  facesBox.textContent = names.length ? names.join(", ") : "no face found";
  facesBox.dataset.labels = result.faces.map(f => f.label).join(",");
}

async function analyze(blob) {
  const response = await fetch("/v1/analyze", {method: "POST", headers: {"Content-Type": blob.type || "image/jpeg"}, body: blob});
  const result = await response.json();
  if (!response.ok) throw new Error(result.error || response.statusText);
  return result;
}

async function loop() {
  while (stream) {
    grab.width = video.videoWidth; grab.height = video.videoHeight;
    if (!grab.width) { await new Promise(r => setTimeout(r, 50)); continue; }
    grab.getContext("2d").drawImage(video, 0, 0);
    const blob = await new Promise(r => grab.toBlob(r, "image/jpeg", 0.85));
    const started = performance.now();
    try {
      const result = await analyze(blob);
      show(grab, result);
      status.textContent = Math.round(performance.now() - started) + " ms per frame";
    } catch (err) { status.textContent = "error: " + err.message; await new Promise(r => setTimeout(r, 500)); }
  }
}

document.getElementById("start").onclick = async () => {
  try {
    stream = await navigator.mediaDevices.getUserMedia({video: {width: 640, height: 480}});
  } catch (err) { status.textContent = "no camera: " + err.message; return; }
  video.srcObject = stream;
  await video.play();
  document.getElementById("start").disabled = true; document.getElementById("stop").disabled = false;
  loop();
};
document.getElementById("stop").onclick = () => {
  if (stream) stream.getTracks().forEach(t => t.stop());
  stream = null;
  document.getElementById("start").disabled = false; document.getElementById("stop").disabled = true;
};

async function analyzeFile(file) {
  if (!file) return;
  const image = await createImageBitmap(file);
  try { show(image, await analyze(file)); status.textContent = file.name; }
  catch (err) { status.textContent = "error: " + err.message; }
}
document.getElementById("file").onchange = e => analyzeFile(e.target.files[0]);
const drop = document.getElementById("drop");
for (const target of [drop, view]) {
  target.addEventListener("dragover", e => { e.preventDefault(); drop.classList.add("over"); });
  target.addEventListener("dragleave", () => drop.classList.remove("over"));
  target.addEventListener("drop", e => { e.preventDefault(); drop.classList.remove("over"); analyzeFile(e.dataTransfer.files[0]); });
}
</script>
</body>
</html>
"""

// The demo page: an image (uploaded, dropped or drawn), noise added here in the page, sent to
// POST /denoise as any client would, and the answer shown beside what was sent.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { source: null, placed: null }; // the last image chosen, before noise (a canvas); where it was drawn

// ---- drawing --------------------------------------------------------------------------------
const pad = $("canvas");
const pen = pad.getContext("2d");
function clearPad() {
  pen.fillStyle = "#000";
  pen.fillRect(0, 0, pad.width, pad.height);
}
clearPad();
let drawing = false;
function point(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * (pad.width / box.width), (event.clientY - box.top) * (pad.height / box.height)];
}
pad.addEventListener("pointerdown", (event) => {
  drawing = true;
  pad.setPointerCapture(event.pointerId);
  pen.beginPath();
  pen.moveTo(...point(event));
});
pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  pen.lineTo(...point(event));
  pen.strokeStyle = "#fff";
  pen.lineWidth = 22;
  pen.lineCap = "round";
  pen.lineJoin = "round";
  pen.stroke();
});
for (const name of ["pointerup", "pointercancel"]) pad.addEventListener(name, () => { drawing = false; });
$("clear").addEventListener("click", clearPad);
$("send-drawing").addEventListener("click", () => choose(copyOf(pad)));

// ---- choosing an image ----------------------------------------------------------------------
function copyOf(source, width = source.width, height = source.height) {
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  canvas.getContext("2d").drawImage(source, 0, 0, width, height);
  return canvas;
}

async function fromFile(file) {
  // Decoded by the browser, to add noise here; a file it cannot decode is sent as it is, so the
  // service says what is wrong with it.
  try {
    const bitmap = await createImageBitmap(file);
    const scale = Math.min(1, 1024 / Math.max(bitmap.width, bitmap.height));
    choose(copyOf(bitmap, Math.round(bitmap.width * scale), Math.round(bitmap.height * scale)));
  } catch {
    state.source = null;
    send(file, null);
  }
}

$("file").addEventListener("change", () => { if ($("file").files[0]) fromFile($("file").files[0]); });
const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  if (event.dataTransfer.files[0]) fromFile(event.dataTransfer.files[0]);
});
$("example").addEventListener("click", async () => {
  const response = await fetch("/static/demo/example.png");
  fromFile(await response.blob());
});

function choose(canvas) {
  state.source = canvas;
  $("resend").disabled = false;
  const noisy = withNoise(canvas, Number($("sigma").value));
  noisy.toBlob((blob) => send(blob, noisy), "image/png");
}

// ---- noise, in the page ---------------------------------------------------------------------
function gaussian() {
  // Box-Muller: two uniform draws, one standard normal.
  return Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random());
}
function withNoise(source, sigma) {
  const canvas = copyOf(source);
  if (sigma <= 0) return canvas;
  const context = canvas.getContext("2d");
  const image = context.getImageData(0, 0, canvas.width, canvas.height);
  const pixels = image.data;
  for (let i = 0; i < pixels.length; i += 4) {
    const gray = (0.299 * pixels[i] + 0.587 * pixels[i + 1] + 0.114 * pixels[i + 2]) / 255;
    const value = Math.round(Math.min(1, Math.max(0, gray + sigma * gaussian())) * 255);
    pixels[i] = pixels[i + 1] = pixels[i + 2] = value;
    pixels[i + 3] = 255;
  }
  context.putImageData(image, 0, 0);
  return canvas;
}
$("sigma").addEventListener("input", () => { $("sigma-value").value = Number($("sigma").value).toFixed(2); });
$("resend").addEventListener("click", () => { if (state.source) choose(state.source); });

// ---- the request and its answer -------------------------------------------------------------
function showSent(canvas) {
  const sent = $("sent");
  const context = sent.getContext("2d");
  context.fillStyle = "#ddd";
  context.fillRect(0, 0, sent.width, sent.height);
  if (!canvas) return;
  const scale = Math.min(sent.width / canvas.width, sent.height / canvas.height);
  const width = canvas.width * scale;
  const height = canvas.height * scale;
  context.imageSmoothingEnabled = false;
  context.drawImage(canvas, (sent.width - width) / 2, (sent.height - height) / 2, width, height);
  state.placed = { scale, left: (sent.width - width) / 2, top: (sent.height - height) / 2 };
}

// Every digit found (fit=digit, digits, auto), outlined where it stands on what was sent.
function drawBoxes(digits) {
  const placed = state.placed;
  if (!digits || !placed) return;
  const context = $("sent").getContext("2d");
  context.strokeStyle = "#d22";
  context.lineWidth = 2;
  for (const { box } of digits) {
    context.strokeRect(placed.left + box.x * placed.scale, placed.top + box.y * placed.scale,
      box.width * placed.scale, box.height * placed.scale);
  }
}

function say(text, isError) {
  const message = $("message");
  message.textContent = text;
  message.hidden = !text;
  message.classList.toggle("error", Boolean(isError));
}

async function send(blob, sentCanvas) {
  showSent(sentCanvas);
  say("Denoising…", false);
  const form = new FormData();
  form.append("file", blob, "upload.png");
  const headers = { Accept: "application/json" };
  const key = $("api-key").value.trim();
  if (key) headers["X-API-Key"] = key;
  let response;
  try {
    response = await fetch(`/denoise?fit=${encodeURIComponent($("fit").value)}`, { method: "POST", headers, body: form });
  } catch (error) {
    say(`The service could not be reached: ${error.message}`, true);
    return;
  }
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : { detail: await response.text() };
  if (!response.ok) {
    showProblem(response, body);
    return;
  }
  say("", false);
  $("model-input").src = `data:image/png;base64,${body.model_input_png_base64}`;
  $("denoised").src = `data:image/png;base64,${body.image_png_base64}`;
  $("error").textContent = body.reconstruction_error.toFixed(4);
  const score = body.anomaly_score === null ? "" : ` (score ${body.anomaly_score.toFixed(3)}, threshold ${body.anomaly_threshold.toFixed(3)})`;
  $("anomaly").textContent = (body.anomaly ? "yes: this does not look like a digit" : "no: looks like a digit") + score;
  $("digits-found").textContent = body.digits ? String(body.digits.length) : "not looked for (fit=stretch)";
  drawBoxes(body.digits);
  $("version").textContent = String(body.model_version);
  const t = body.timings;
  $("timings").textContent = `decode ${t.decode_ms.toFixed(1)} ms, inference ${t.inference_ms.toFixed(1)} ms, encode ${t.encode_ms.toFixed(1)} ms`;
  $("facts").hidden = false;
}

const HINTS = {
  401: "Enter the service's API key in the options and send again.",
  413: "The file is larger than the service accepts.",
  415: "The service reads PNG, JPEG, GIF, BMP, TIFF and WebP images.",
  422: "The image could not be used as it is.",
  503: "The service is busy or starting; try again in a moment.",
};

function showProblem(response, problem) {
  $("model-input").removeAttribute("src");
  $("denoised").removeAttribute("src");
  $("facts").hidden = true;
  const retry = response.headers.get("retry-after");
  const title = problem.title || response.statusText || "Error";
  const parts = [`${response.status} ${title}: ${problem.detail || "no detail"}.`, HINTS[response.status] || ""];
  if (retry) parts.push(`Retry after ${retry} s.`);
  say(parts.filter(Boolean).join(" "), true);
}

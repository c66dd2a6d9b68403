// The ds2-serve page: upload a file or record from the microphone, POST it to /v1/transcribe as a
// file, show the transcript, the RTF and the word timings over the waveform. Plain JS, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
let recorder = null;   // {context, stream, node, chunks} while recording

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function loadModelInfo() {
  try {
    const info = await (await fetch("/v1/model")).json();
    $("model-info").textContent = `${info.preset} · ${info.parameters.toLocaleString()} parameters · ` +
      `${info.features.sample_rate} Hz · ${info.format} ${info.model_path.split("/").pop()}`;
  } catch (err) {
    $("model-info").textContent = "model information unavailable";
  }
}

// Samples of the first channel for the waveform (null when the browser cannot decode the file).
async function decodeSamples(blob) {
  try {
    const context = new OfflineAudioContext(1, 1, 16000);
    const buffer = await context.decodeAudioData(await blob.arrayBuffer());
    return { samples: buffer.getChannelData(0), rate: buffer.sampleRate };
  } catch (err) {
    return null;
  }
}

function drawResult(canvas, audio, result) {
  const ctx = canvas.getContext("2d");
  const width = canvas.width, height = canvas.height, mid = height / 2;
  const duration = Math.max(result.duration, 1e-3);
  ctx.clearRect(0, 0, width, height);
  if (audio) {
    ctx.fillStyle = "#8aa4cf";
    const perPixel = Math.max(1, Math.floor(audio.samples.length / width));
    for (let x = 0; x < width; x++) {
      let lo = 0, hi = 0;
      for (let i = x * perPixel; i < Math.min((x + 1) * perPixel, audio.samples.length); i++) {
        lo = Math.min(lo, audio.samples[i]);
        hi = Math.max(hi, audio.samples[i]);
      }
      ctx.fillRect(x, mid - hi * mid, 1, Math.max(1, (hi - lo) * mid));
    }
  }
  ctx.font = "14px system-ui, sans-serif";
  result.words.forEach((word, i) => {
    const x0 = (word.start / duration) * width, x1 = (word.end / duration) * width;
    ctx.fillStyle = i % 2 ? "rgba(36, 86, 166, 0.18)" : "rgba(230, 126, 34, 0.22)";
    ctx.fillRect(x0, 0, Math.max(2, x1 - x0), height);
    ctx.fillStyle = "#1d2430";
    ctx.fillText(word.word, x0 + 2, 16 + (i % 3) * 16);
  });
}

async function transcribe(blob, filename) {
  showError("");
  $("status").textContent = `transcribing ${filename}…`;
  const form = new FormData();
  form.append("file", blob, filename);
  try {
    const response = await fetch("/v1/transcribe", { method: "POST", body: form });
    const body = await response.json();
    if (!response.ok) {
      throw new Error(typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail));
    }
    $("transcript").textContent = body.text || "(no speech recognised)";
    $("duration").textContent = `${body.duration.toFixed(2)} s`;
    $("processing").textContent = `${body.processing_time.toFixed(3)} s`;
    $("rtf").textContent = body.rtf.toFixed(3);
    drawResult($("waveform"), await decodeSamples(blob), body);
    $("status").textContent = `${filename}: done`;
  } catch (err) {
    showError(`${filename}: ${err.message}`);
    $("status").textContent = "";
  }
}

// 16-bit PCM mono WAV of Float32 samples.
function encodeWav(samples, rate) {
  const view = new DataView(new ArrayBuffer(44 + samples.length * 2));
  const text = (offset, s) => [...s].forEach((c, i) => view.setUint8(offset + i, c.charCodeAt(0)));
  text(0, "RIFF"); view.setUint32(4, 36 + samples.length * 2, true); text(8, "WAVE");
  text(12, "fmt "); view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, rate, true); view.setUint32(28, rate * 2, true); view.setUint16(32, 2, true);
  view.setUint16(34, 16, true); text(36, "data"); view.setUint32(40, samples.length * 2, true);
  samples.forEach((s, i) => view.setInt16(44 + i * 2, Math.max(-1, Math.min(1, s)) * 0x7fff, true));
  return new Blob([view], { type: "audio/wav" });
}

async function startRecording() {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  const context = new AudioContext();
  const source = context.createMediaStreamSource(stream);
  const node = context.createScriptProcessor(4096, 1, 1);
  const chunks = [];
  node.onaudioprocess = (event) => chunks.push(new Float32Array(event.inputBuffer.getChannelData(0)));
  source.connect(node);
  node.connect(context.destination);
  recorder = { context, stream, node, chunks };
  $("record-button").textContent = "■ Stop";
  $("record-button").classList.add("recording");
  $("status").textContent = "recording…";
}

async function stopRecording() {
  const { context, stream, node, chunks } = recorder;
  recorder = null;
  node.disconnect();
  stream.getTracks().forEach((track) => track.stop());
  await context.close();
  $("record-button").textContent = "● Record";
  $("record-button").classList.remove("recording");
  const samples = new Float32Array(chunks.reduce((n, c) => n + c.length, 0));
  chunks.reduce((offset, c) => { samples.set(c, offset); return offset + c.length; }, 0);
  await transcribe(encodeWav(samples, context.sampleRate), "recording.wav");
}

$("file-input").addEventListener("change", (event) => {
  const file = event.target.files[0];
  if (file) transcribe(file, file.name);
  event.target.value = "";
});

$("record-button").addEventListener("click", async () => {
  try {
    await (recorder ? stopRecording() : startRecording());
  } catch (err) {
    showError(`microphone: ${err.message}`);
  }
});

loadModelInfo();

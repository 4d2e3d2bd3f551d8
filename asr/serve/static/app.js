// The page of `asr serve`: send a file or a recording to /v1/audio/transcriptions (verbose_json with word times),
// show the words with their confidences, follow playback word by word, and offer the transcript for download.
"use strict";

const $ = (id) => document.getElementById(id);
let model = "asr";  // the id the server answers to (asr serve --model-name), read from /health below
fetch("/health").then((r) => r.json()).then((health) => { model = health.model; }).catch(() => {});
let result = null;  // the last verbose_json response
let audioUrl = null;

const keyInput = $("api-key");
keyInput.value = localStorage.getItem("asr-api-key") || "";
keyInput.addEventListener("change", () => localStorage.setItem("asr-api-key", keyInput.value));

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

async function transcribe(blob, name) {
  setStatus(`Transcribing ${name}…`);
  $("result").hidden = true;
  const form = new FormData();
  form.append("file", blob, name);
  form.append("model", model);
  form.append("response_format", "verbose_json");
  form.append("timestamp_granularities[]", "word");
  const headers = keyInput.value ? { Authorization: `Bearer ${keyInput.value}` } : {};
  let response;
  try {
    response = await fetch("/v1/audio/transcriptions", { method: "POST", body: form, headers });
  } catch (error) {
    setStatus(`The server could not be reached (${error.message}).`, true);
    return;
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const message = body && body.error ? body.error.message : `HTTP ${response.status}`;
    setStatus(response.status === 401 ? `${message} Enter the key under “API key”.` : message, true);
    if (response.status === 401) $("key-box").open = true;
    return;
  }
  result = body;
  if (audioUrl) URL.revokeObjectURL(audioUrl);
  audioUrl = URL.createObjectURL(blob);
  $("player").src = audioUrl;
  showWords(body.words || []);
  const uncertain = (body.words || []).filter((w) => w.uncertain).length;
  setStatus(`${name}: ${body.duration.toFixed(1)} s, ${(body.words || []).length} words` +
            (uncertain ? `, ${uncertain} uncertain` : ""));
  $("result").hidden = false;
}

function showWords(words) {
  const box = $("transcript");
  box.replaceChildren();
  if (!words.length) {
    box.textContent = "(no speech heard)";
    return;
  }
  words.forEach((word, index) => {
    const span = document.createElement("span");
    span.className = "word" + (word.uncertain ? " uncertain" : "");
    span.textContent = word.word;
    span.dataset.index = index;
    span.title = `${word.start.toFixed(2)}–${word.end.toFixed(2)} s, confidence ${Math.round(100 * word.confidence)}%`;
    span.addEventListener("click", () => { $("player").currentTime = word.start; $("player").play(); });
    box.append(span, " ");
  });
}

// Playback: the word being spoken is highlighted.
$("player").addEventListener("timeupdate", () => {
  if (!result || !result.words) return;
  const now = $("player").currentTime;
  document.querySelectorAll(".word").forEach((span) => {
    const word = result.words[span.dataset.index];
    span.classList.toggle("current", now >= word.start && now < word.end + 0.05);
  });
});

// Downloads, built from the response: subtitles use its segments (the server's subtitle cues).
function stamp(seconds, separator) {
  const ms = Math.round(seconds * 1000);
  const pad = (n, width = 2) => String(n).padStart(width, "0");
  return `${pad(Math.floor(ms / 3600000))}:${pad(Math.floor(ms / 60000) % 60)}:${pad(Math.floor(ms / 1000) % 60)}` +
         `${separator}${pad(ms % 1000, 3)}`;
}
const RENDER = {
  txt: (r) => r.text + "\n",
  srt: (r) => r.segments.map((s, i) => `${i + 1}\n${stamp(s.start, ",")} --> ${stamp(s.end, ",")}\n${s.text}\n`)
    .join("\n"),
  vtt: (r) => "WEBVTT\n\n" + r.segments.map((s) => `${stamp(s.start, ".")} --> ${stamp(s.end, ".")}\n${s.text}\n`)
    .join("\n"),
  json: (r) => JSON.stringify(r, null, 2),
};
document.querySelectorAll(".downloads button").forEach((button) => {
  button.addEventListener("click", () => {
    const format = button.dataset.format;
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([RENDER[format](result)], { type: "text/plain" }));
    link.download = `transcript.${format}`;
    link.click();
    URL.revokeObjectURL(link.href);
  });
});

// A file: chosen or dropped.
$("file").addEventListener("change", () => {
  const file = $("file").files[0];
  if (file) transcribe(file, file.name);
});
const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  const file = event.dataTransfer.files[0];
  if (file) transcribe(file, file.name);
});

// The microphone: raw samples from the Web Audio API, sent as a 16-bit WAV (every browser records that the same
// way, where MediaRecorder's containers differ between browsers).
let recording = null;
$("record").addEventListener("click", async () => {
  if (recording) {
    const { context, stream, chunks } = recording;
    recording = null;
    stream.getTracks().forEach((track) => track.stop());
    await context.close();
    $("record").textContent = "● Record";
    $("record").classList.remove("recording");
    transcribe(wavBlob(chunks, context.sampleRate), "recording.wav");
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (error) {
    setStatus(`The microphone is not available (${error.message}).`, true);
    return;
  }
  const context = new AudioContext();
  const source = context.createMediaStreamSource(stream);
  const processor = context.createScriptProcessor(4096, 1, 1);
  const chunks = [];
  processor.onaudioprocess = (event) => chunks.push(new Float32Array(event.inputBuffer.getChannelData(0)));
  source.connect(processor);
  processor.connect(context.destination);
  recording = { context, stream, chunks };
  $("record").textContent = "■ Stop";
  $("record").classList.add("recording");
  setStatus("Recording… press Stop when done.");
});

function wavBlob(chunks, sampleRate) {
  const length = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  const view = new DataView(new ArrayBuffer(44 + 2 * length));
  const text = (offset, s) => [...s].forEach((c, i) => view.setUint8(offset + i, c.charCodeAt(0)));
  text(0, "RIFF"); view.setUint32(4, 36 + 2 * length, true); text(8, "WAVE");
  text(12, "fmt "); view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, sampleRate, true); view.setUint32(28, 2 * sampleRate, true);
  view.setUint16(32, 2, true); view.setUint16(34, 16, true);
  text(36, "data"); view.setUint32(40, 2 * length, true);
  let offset = 44;
  for (const chunk of chunks) {
    for (const sample of chunk) {
      view.setInt16(offset, Math.max(-1, Math.min(1, sample)) * 0x7fff, true);
      offset += 2;
    }
  }
  return new Blob([view], { type: "audio/wav" });
}

// The bidi browser page: microphone in, the model's voice out, transcripts and tool
// calls on screen, over one WebSocket to this server's /v1/session.
//
// Options come after "#" in the address (never sent to the server):
//   #token=SECRET   the server's token, when it has one
//   #raw=1          no echo cancellation, noise suppression or gain control
//   #ns=0, #agc=0   no noise suppression / no automatic gain control (they reshape
//                   synthetic test audio; echo cancellation stays on)
"use strict";

const $ = (id) => document.getElementById(id);
const option = (name) => new URLSearchParams(location.hash.slice(1)).get(name);

// What happened, for people (the metrics line) and for the browser tests.
const stats = {
  contextRate: 0,
  audioChunks: 0,
  playedFrames: 0,
  queuedFrames: 0,
  flushes: 0,
  flushedFrames: 0,
  playbackReports: 0,
  ttfaMs: [],
  events: [],
  closed: null,
};
window.bidiStats = stats;

let ws = null;
let ctx = null;
let stream = null;
let capture = null;
let player = null;
let session = null;
let stopping = false;
let responseId = null;
let turnEnd = null;
let awaitingAudio = false;
let lastReport = { rid: null, ms: -1, at: 0 };
const live = new Map(); // utterance id -> its <li>, while the assistant is speaking

function setStatus(text, error = false) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", error);
}

function addLog(kind, who, text) {
  const li = document.createElement("li");
  li.className = kind;
  if (who) {
    const label = document.createElement("span");
    label.className = "who";
    label.textContent = who;
    li.append(label);
  }
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  li.append(body);
  $("log").append(li);
  li.scrollIntoView({ block: "end" });
  return li;
}

function setRunning(running) {
  const button = $("start");
  button.textContent = running ? "Stop" : "Start";
  button.classList.toggle("running", running);
  $("text").disabled = !running;
  $("send").disabled = !running;
}

function send(message) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
}

async function start() {
  if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    setStatus(
      "The microphone needs a secure page: open this page over https://, or as " +
        "http://localhost or http://127.0.0.1 on the server's machine.",
      true,
    );
    return;
  }
  stopping = false;
  setRunning(true);
  setStatus("Asking for the microphone...");
  const raw = option("raw") === "1";
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: {
        channelCount: 1,
        echoCancellation: !raw,
        noiseSuppression: !raw && option("ns") !== "0",
        autoGainControl: !raw && option("agc") !== "0",
      },
    });
  } catch (err) {
    const name = err && err.name;
    let text;
    if (name === "NotAllowedError" || name === "SecurityError") {
      text =
        "Microphone access was denied. Allow it for this site (the icon in the " +
        "address bar) and press Start again.";
    } else if (name === "NotFoundError" || name === "OverconstrainedError") {
      text = "No microphone was found. Connect one and press Start again.";
    } else {
      text = `The microphone could not be opened (${name || err}). Press Start to try again.`;
    }
    teardown();
    setStatus(text, true);
    return;
  }
  ctx = new AudioContext();
  stats.contextRate = ctx.sampleRate;
  await Promise.all([
    ctx.audioWorklet.addModule("/static/capture-worklet.js"),
    ctx.audioWorklet.addModule("/static/playback-worklet.js"),
  ]);
  connect();
}

function connect() {
  const url = new URL("/v1/session", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.hash = "";
  const token = option("token");
  if (token) url.searchParams.set("token", token);
  setStatus("Connecting...");
  let opened = false;
  const socket = new WebSocket(url);
  socket.binaryType = "arraybuffer";
  ws = socket;
  socket.onopen = () => {
    opened = true;
  };
  socket.onmessage = (event) => {
    if (typeof event.data === "string") onJson(JSON.parse(event.data));
    else onAudio(event.data);
  };
  socket.onclose = (event) => {
    stats.closed = { code: event.code, reason: event.reason };
    if (ws !== socket) return;
    const user = stopping;
    teardown();
    if (user) {
      setStatus("Stopped. Press Start to talk again.");
      return;
    }
    let why = event.reason ? `: ${event.reason}` : "";
    if (!opened) {
      why =
        ": the server refused the session (a wrong or missing #token, an origin it " +
        "does not allow, or it is full) or is not running";
    }
    setStatus(`Connection closed (code ${event.code})${why}. Press Start to try again.`, true);
  };
}

function startAudio() {
  const source = ctx.createMediaStreamSource(stream);
  capture = new AudioWorkletNode(ctx, "bidi-capture", {
    processorOptions: { targetRate: session.input_sample_rate, chunkMs: 20 },
  });
  capture.port.onmessage = (event) => {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(event.data);
  };
  source.connect(capture);
  capture.connect(ctx.destination); // silent: keeps the graph pulling the microphone
  player = new AudioWorkletNode(ctx, "bidi-playback", {
    numberOfInputs: 0,
    outputChannelCount: [1],
    processorOptions: { sourceRate: session.output_sample_rate },
  });
  player.port.onmessage = (event) => onPlayback(event.data);
  player.connect(ctx.destination);
  if (ctx.state === "suspended") ctx.resume();
}

function onJson(message) {
  stats.events.push(message.type);
  switch (message.type) {
    case "session":
      session = message;
      $("model").textContent =
        `${message.model}: ${message.input_sample_rate / 1000} kHz in, ` +
        `${message.output_sample_rate / 1000} kHz out`;
      startAudio();
      setStatus("Listening: speak now (or type below).");
      break;
    case "bidi_response_start":
      responseId = message.response_id;
      awaitingAudio = true;
      break;
    case "bidi_audio_stream":
      if (message.sample_rate === session.output_sample_rate) {
        const bytes = Uint8Array.from(atob(message.audio), (c) => c.charCodeAt(0));
        onAudio(bytes.buffer);
      }
      break;
    case "bidi_transcript_stream":
      onTranscript(message);
      break;
    case "tool_use_stream":
      addLog(
        "tool",
        "Tool call",
        `${message.tool_use.name}(${JSON.stringify(message.tool_use.input)})`,
      );
      break;
    case "tool_result":
      addLog("tool-result", "Tool result", resultText(message.tool_result));
      break;
    case "bidi_interruption":
      if (player) player.port.postMessage({ type: "flush" });
      addLog("event", "", "You interrupted: playback stopped.");
      break;
    case "bidi_response_complete":
      for (const [key, li] of live) {
        if (li.dataset.response === message.response_id) {
          li.classList.remove("live");
          live.delete(key);
        }
      }
      break;
    case "bidi_connection_restart":
      addLog("event", "", "The model connection restarted; the conversation goes on.");
      break;
    case "bidi_error":
      addLog("error", "Error", message.message);
      break;
    default:
      break;
  }
}

function onTranscript(message) {
  if (message.role === "user") {
    if (message.is_final) {
      addLog("user", "You", message.text);
      turnEnd = performance.now();
    }
    return;
  }
  const key = message.item_id || responseId || "assistant";
  let li = live.get(key);
  if (!li) {
    li = addLog("assistant live", "Assistant", "");
    li.dataset.response = responseId || "";
    li.dataset.text = "";
    live.set(key, li);
  }
  const text = message.is_final
    ? message.text
    : (message.current_transcript ?? li.dataset.text + message.text);
  li.dataset.text = text;
  li.querySelector(".text").textContent = text;
  if (message.is_final) {
    li.classList.remove("live");
    live.delete(key);
  }
}

function resultText(result) {
  const parts = (result.content || []).map((part) =>
    "text" in part ? part.text : JSON.stringify(part.json),
  );
  return `${result.status}: ${parts.join(" ")}`;
}

function onAudio(buffer) {
  if (!player) return;
  stats.audioChunks += 1;
  if (awaitingAudio && turnEnd !== null) {
    const ms = performance.now() - turnEnd;
    stats.ttfaMs.push(ms);
    $("ttfa").textContent = `${Math.round(ms)} ms`;
  }
  awaitingAudio = false;
  player.port.postMessage({ type: "audio", pcm: buffer, rid: responseId }, [buffer]);
}

function onPlayback(report) {
  stats.playedFrames = report.played;
  stats.queuedFrames = report.queued;
  stats.flushes = report.flushes;
  stats.flushedFrames = report.flushed;
  $("played").textContent = `${(report.played / ctx.sampleRate).toFixed(1)} s`;
  if (!report.rid) return;
  // How much of the answer was really heard: the server truncates to it on barge-in.
  const ms = Math.round((report.ridPlayed / ctx.sampleRate) * 1000);
  const now = performance.now();
  if (!report.flush && report.rid === lastReport.rid && (ms === lastReport.ms || now - lastReport.at < 50)) {
    return;
  }
  lastReport = { rid: report.rid, ms, at: now };
  stats.playbackReports += 1;
  send({ type: "playback", response_id: report.rid, played_ms: ms });
}

function teardown() {
  if (capture) {
    capture.port.postMessage("stop");
    capture.disconnect();
  }
  if (player) player.disconnect();
  if (stream) stream.getTracks().forEach((track) => track.stop());
  if (ctx) ctx.close();
  if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000, "user stopped");
  ws = null;
  ctx = null;
  stream = null;
  capture = null;
  player = null;
  session = null;
  live.clear();
  setRunning(false);
}

$("start").addEventListener("click", () => {
  if (ws || stream) {
    stopping = true;
    teardown();
    setStatus("Stopped. Press Start to talk again.");
  } else {
    start();
  }
});

$("text-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $("text");
  const text = input.value.trim();
  if (!text) return;
  send({ type: "bidi_text_input", text, role: "user" });
  addLog("user", "You", text);
  turnEnd = performance.now();
  input.value = "";
});

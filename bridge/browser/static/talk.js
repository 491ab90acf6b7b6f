// The talk page: the microphone up a WebSocket, the agent's voice back, paced by the page's
// own player, stopped at once on barge-in; each turn's words and latency shown as they come.
"use strict";

const query = new URLSearchParams(location.search);
const token = query.get("token") || "";
const debug = query.get("debug") === "1";
const $ = (id) => document.getElementById(id);

const talk = {
  ws: null,
  context: null,
  stream: null,
  player: null,
  turn: null,
  clears: 0,
  played: [],
  turns: new Map(),
  // tests read what the page played (16 kHz samples, with ?debug=1)
  playedSamples() {
    const out = [];
    for (const chunk of this.played) for (const s of chunk) out.push(s);
    return out;
  },
};
window.talk = talk;

function withToken(path) {
  return token ? `${path}?token=${encodeURIComponent(token)}` : path;
}

function status(text) {
  $("status").textContent = text;
}

function turnRow(turn) {
  let row = talk.turns.get(turn);
  if (!row) {
    row = document.createElement("li");
    row.dataset.turn = String(turn);
    row.innerHTML = '<div class="user"></div><div class="assistant"></div><div class="latency"></div>';
    $("turns").appendChild(row);
    talk.turns.set(turn, row);
  }
  return row;
}

function onControl(message) {
  switch (message.type) {
    case "hello":
      status(`Connected${message.persona ? ` to ${message.persona}` : ""}. Speak.`);
      break;
    case "turn":
      talk.turn = message.turn;
      break;
    case "clear":
      talk.clears += 1;
      talk.player.port.postMessage({ type: "clear", turn: message.turn });
      break;
    case "transcript":
      turnRow(message.turn).querySelector(`.${message.role}`).textContent =
        `${message.role === "user" ? "You" : "Agent"}: ${message.text}`;
      break;
    case "latency":
      turnRow(message.turn).querySelector(".latency").textContent = `reply after ${message.ms} ms`;
      break;
    default:
      break; // turn_end, and whatever a newer bridge says
  }
}

async function start() {
  if (talk.ws) return;
  $("start").disabled = true;
  status("Starting…");
  try {
    talk.context = new AudioContext();
    await talk.context.audioWorklet.addModule("/talk/static/worklets.js");
    talk.stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
    });
  } catch (error) {
    status(`No microphone: ${error.message}`);
    $("start").disabled = false;
    return;
  }
  const context = talk.context;
  const mic = new AudioWorkletNode(context, "capture");
  context.createMediaStreamSource(talk.stream).connect(mic);
  talk.player = new AudioWorkletNode(context, "player", {
    outputChannelCount: [1],
    processorOptions: { debug },
  });
  talk.player.connect(context.destination);
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}${withToken("/ws/browser")}`);
  ws.binaryType = "arraybuffer";
  talk.ws = ws;
  ws.onopen = () => ws.send(JSON.stringify({ type: "hello", persona: $("persona").value }));
  ws.onmessage = (event) => {
    if (typeof event.data === "string") onControl(JSON.parse(event.data));
    else talk.player.port.postMessage({ type: "audio", turn: talk.turn, pcm: event.data }, [event.data]);
  };
  ws.onclose = (event) => {
    status(`Ended${event.reason ? `: ${event.reason}` : ""}.`);
    stop();
  };
  mic.port.onmessage = (event) => {
    if (ws.readyState === WebSocket.OPEN) ws.send(event.data);
  };
  talk.player.port.onmessage = (event) => {
    const message = event.data;
    if (message.type === "debug") talk.played.push(new Int16Array(message.pcm));
    else if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
  };
  if (context.state === "suspended") status("Click anywhere to hear the agent.");
  document.addEventListener("click", () => context.resume(), { once: true });
  $("start").textContent = "Stop";
  $("start").classList.add("live");
  $("start").disabled = false;
}

function stop() {
  const ws = talk.ws;
  talk.ws = null;
  if (ws && ws.readyState === WebSocket.OPEN) {
    ws.send(JSON.stringify({ type: "bye" }));
    ws.close(1000, "bye");
  }
  if (talk.stream) talk.stream.getTracks().forEach((track) => track.stop());
  if (talk.context) talk.context.close();
  talk.stream = null;
  talk.context = null;
  $("start").textContent = "Start";
  $("start").classList.remove("live");
}

async function loadPersonas() {
  const answer = await fetch(withToken("/talk/personas"));
  const body = await answer.json();
  if (!answer.ok) {
    status(`Not allowed: ${body.error}`);
    $("start").disabled = true;
    return false;
  }
  const select = $("persona");
  for (const name of body.personas) {
    const option = document.createElement("option");
    option.value = name;
    option.textContent = name || "default";
    select.appendChild(option);
  }
  const wanted = query.get("persona");
  if (wanted && body.personas.includes(wanted)) select.value = wanted;
  select.disabled = body.fixed;
  return true;
}

$("start").addEventListener("click", () => (talk.ws ? stop() : start()));
loadPersonas().then((allowed) => {
  if (allowed && query.get("autostart") === "1") start();
});

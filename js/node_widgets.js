// The pack's widgets on nodes: a mouth-cue timeline with audio on Lip Sync nodes, a camera-move preview on nodes
// with a camera move, and core's audio player on the pack's Load Audio. Imported by animstudio.js.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { el, post, setting } from "./util.js";

const SHAPE_COLORS = { A: "#4e79a7", B: "#f28e2b", C: "#e15759", D: "#76b7b2", E: "#59a14f",
                       F: "#edc948", G: "#b07aa1", H: "#ff9da7", X: "#555" };

// ---- drawing the mouth cues --------------------------------------------------------------------------------------

function drawCues(canvas, cues, seconds, playhead) {
  const ctx = canvas.getContext("2d");
  const width = (canvas.width = canvas.clientWidth || 300);
  const height = (canvas.height = 36);
  ctx.clearRect(0, 0, width, height);
  if (!cues?.length) {
    ctx.fillStyle = "#888";
    ctx.font = "11px sans-serif";
    ctx.fillText("no mouth cues yet: run the node or preview the line", 4, 22);
    return;
  }
  const total = seconds || cues[cues.length - 1].end || 1;
  ctx.font = "bold 11px sans-serif";
  for (const cue of cues) {
    const x = (cue.start / total) * width;
    const w = Math.max(1, ((cue.end - cue.start) / total) * width);
    ctx.fillStyle = SHAPE_COLORS[cue.value] || "#999";
    ctx.fillRect(x, 4, w, height - 8);
    if (w > 9) {
      ctx.fillStyle = "#fff";
      ctx.fillText(cue.value, x + 2, height / 2 + 4);
    }
  }
  if (playhead != null) {
    ctx.fillStyle = "#fff";
    ctx.fillRect((playhead / total) * width, 0, 2, height);
  }
}

// ---- where a Lip Sync node's line comes from, for "Preview line" ----------------------------------------------

const TEXT_WIDGET_TYPES = new Set(["text", "customtext", "string", "STRING"]);
const isTextWidget = (w) => !!w && w.type !== "combo" && w.type !== "button" && w.serialize !== false
  && w.options?.serialize !== false && (TEXT_WIDGET_TYPES.has(w.type) || typeof w.value === "string");
const linkedSlot = (node, name) => {
  const slot = (node?.inputs || []).findIndex((i) => i.name === name);
  return slot >= 0 && node.inputs[slot].link != null ? slot : -1;
};
const titleOf = (node) => node?.title || node?.type || "a node";

// The text a node sends out of output ``slot`` when one of its widgets obviously holds it: the widget named like the
// output, or the only text widget of a node with one output (core's String nodes, a Primitive). A widget that is
// itself fed by a link is followed to that link's source. Null when no widget holds it (a run computes it).
function sourceText(node, slot, depth = 0) {
  if (!node || depth > 8) return null;
  const output = node.outputs?.[slot];
  const texts = (node.widgets || []).filter(isTextWidget);
  const widget = texts.find((w) => output && w.name === output.name)
    ?? ((node.outputs?.length || 0) === 1 && texts.length === 1 ? texts[0] : null);
  if (!widget) return null;
  return widgetText(node, widget.name, depth);
}

// A widget's text, or its link's source's: {text, node} or null (see sourceText).
function widgetText(node, name, depth = 0) {
  const fed = linkedSlot(node, name);
  if (fed < 0) {
    const value = node.widgets?.find((w) => w.name === name)?.value;
    return { text: typeof value === "string" ? value : "", node };
  }
  const link = node.getInputLink?.(fed);
  return link ? sourceText(node.getInputNode?.(fed), link.origin_slot, depth + 1) : null;
}

// What "Preview line" speaks: {text, voice, source} or {problem}. The dialogue_text widget; when that input is linked,
// the text of the node it comes from where a widget obviously holds it (else the problem says the line comes through
// a link); when it is empty and unlinked, the line of the TTS node the audio comes from, which is what a run says.
// The voice is that TTS node's when the audio comes from one, else the default engine and the node's language.
export function previewLine(node) {
  const audioSlot = linkedSlot(node, "audio");
  const speaker = audioSlot >= 0 ? node.getInputNode?.(audioSlot) : null;
  const tts = speaker?.comfyClass === "AnimStudioTTS" ? speaker : null;
  const value = (of, name) => of?.widgets?.find((w) => w.name === name)?.value;
  const voice = tts
    ? { engine: value(tts, "engine"), voice: value(tts, "voice") || undefined,
        language: value(tts, "language") || undefined }
    : { engine: setting("AnimStudio.TTS.DefaultEngine", "espeak"), language: value(node, "language") || undefined };
  const textSlot = linkedSlot(node, "dialogue_text");
  if (textSlot >= 0) {
    const link = node.getInputLink?.(textSlot);
    const from = node.getInputNode?.(textSlot);
    const found = link && from ? sourceText(from, link.origin_slot) : null;
    if (found?.text?.trim()) return { text: found.text, voice, source: titleOf(found.node) };
    const output = from?.outputs?.[link?.origin_slot]?.name;
    const where = from ? ` (from ${titleOf(from)}${output ? `'s ${output}` : ""})` : "";
    return { problem: found ? `the linked line is empty${where}`
                            : `the line comes through a link${where}: run the graph to see its cues` };
  }
  const own = value(node, "dialogue_text");
  if (typeof own === "string" && own.trim()) return { text: own, voice, source: null };
  if (tts) {
    const line = widgetText(tts, "text");
    if (line?.text?.trim()) return { text: line.text, voice, source: titleOf(line.node) };
    return { problem: line ? `dialogue_text is empty, and so is ${titleOf(line.node)}'s text`
                           : `dialogue_text is empty and ${titleOf(tts)}'s line comes through a link: run the graph `
                             + "to see its cues" };
  }
  return { problem: "dialogue_text is empty" };
}

// ---- the mouth-cue timeline on Lip Sync nodes ----------------------------------------------------------------

export function addTimeline(node) {
  const canvas = el("canvas", { className: "animstudio-cue-strip", height: 36 });
  canvas.style.cssText = "width:100%;height:36px;display:block";
  const play = el("button", { className: "animstudio-play", textContent: "▶", title: "Play the audio",
                              disabled: true });
  const preview = el("button", { className: "animstudio-preview-line", textContent: "Preview line",
                                 title: "Speak the line (TTS preview) and time its mouth" });
  const info = el("span", { className: "animstudio-timeline-info", textContent: "" });
  info.style.cssText = "font-size:11px;color:#aaa;margin-left:4px";
  const audio = new Audio();
  const box = el("div", { className: "animstudio-timeline" }, canvas, el("div", {}, play, preview, info));
  box.style.cssText = "width:100%";
  const timeline = { cues: null, seconds: 0, line: null, audio };
  const redraw = () => drawCues(canvas, timeline.cues, timeline.seconds, audio.paused ? null : audio.currentTime);
  // ▶ while stopped, ⏸ while playing: the button follows the element (play, pause, end, a new source)
  const showState = () => {
    const playing = !audio.paused && !audio.ended;
    play.textContent = playing ? "⏸" : "▶";
    play.title = playing ? "Pause the audio" : "Play the audio";
    redraw();
  };
  for (const event of ["play", "playing", "pause", "ended", "emptied", "abort"]) {
    audio.addEventListener(event, showState);
  }
  timeline.set = (cues, seconds, audioRef, line = null) => {
    timeline.cues = cues;
    timeline.line = line;
    timeline.seconds = seconds || (cues?.length ? cues[cues.length - 1].end : 0);
    const from = line?.source ? ` (line from ${line.source})` : "";
    info.textContent = cues?.length ? `${cues.length} cues, ${timeline.seconds.toFixed(2)} s${from}` : "";
    if (audioRef?.filename) {
      const params = new URLSearchParams({ filename: audioRef.filename, subfolder: audioRef.subfolder || "",
                                           type: audioRef.type || "temp" });
      audio.src = api.apiURL(`/view?${params}`);
      play.disabled = false;
    }
    showState();
  };
  play.addEventListener("click", () => {
    if (!audio.paused && !audio.ended) { audio.pause(); return; }
    const tick = () => { redraw(); if (!audio.paused && !audio.ended) requestAnimationFrame(tick); };
    audio.play().then(() => requestAnimationFrame(tick), (error) => {
      info.textContent = `cannot play the audio: ${error?.message || error}`;
      showState();
    });
  });
  preview.addEventListener("click", async () => {
    const line = previewLine(node);
    if (line.problem) { info.textContent = line.problem; return; }
    info.textContent = "speaking…";
    preview.disabled = true;
    try {
      const answer = await post("tts_preview", { text: line.text, ...line.voice });
      if (!answer.ok) {
        info.textContent = `${answer.problems?.[0]?.where || "$"}: ${answer.problems?.[0]?.message || answer.error}`;
        return;
      }
      timeline.set(answer.cues?.mouthCues || [], answer.seconds, answer.audio, line);
    } catch (error) {
      info.textContent = `cannot preview the line: ${error?.message || error}`;
    } finally {
      preview.disabled = false;
    }
  });
  node.addDOMWidget("mouth_cue_timeline", "animstudio_timeline", box, { serialize: false, hideOnZoom: false,
                                                                          getMinHeight: () => 86 });
  node.animstudioTimeline = timeline;
  const removed = node.onRemoved;
  node.onRemoved = function (...args) {
    audio.pause();
    return removed?.apply(this, args);
  };
  setTimeout(redraw, 0);
}

// ---- the camera-move preview: the crop window the renderer will travel, from /animstudio/camera_path -------------

export function addCameraPreview(node, moveWidgetName) {
  const canvas = el("canvas", { className: "animstudio-camera-preview", height: 72 });
  canvas.style.cssText = "width:100%;height:72px;display:block";
  const preview = { windows: null, aspect: 16 / 9, frame: 0, key: "" };
  const widget = (name) => node.widgets?.find((w) => w.name === name);
  const draw = () => {
    const ctx = canvas.getContext("2d");
    const width = (canvas.width = canvas.clientWidth || 200);
    const height = (canvas.height = 72);
    ctx.clearRect(0, 0, width, height);
    const h = height - 8, w = Math.min(width - 8, h * preview.aspect);
    const x0 = (width - w) / 2, y0 = 4;
    const picture = node.imgs?.[0];
    if (picture?.complete && picture.naturalWidth) ctx.drawImage(picture, x0, y0, w, w / preview.aspect);
    else { ctx.fillStyle = "#333"; ctx.fillRect(x0, y0, w, h); }
    const windows = preview.windows;
    if (!windows?.length) return;
    const [l, t, r, b] = windows[preview.frame % windows.length];
    ctx.strokeStyle = "#ffd24d";
    ctx.lineWidth = 2;
    ctx.strokeRect(x0 + l * w, y0 + t * h, (r - l) * w, (b - t) * h);
  };
  // a node from the search box, a paste or a workflow may have no value yet in a widget (or no such widget): the
  // route is asked only for a known move, and a failed request (server gone) is tried again on the next change
  const number = (name) => {
    const v = widget(name)?.value;
    return typeof v === "number" && Number.isFinite(v) ? v : undefined;
  };
  const refresh = async () => {
    const move = widget(moveWidgetName)?.value;
    if (typeof move !== "string" || !move) return;
    const body = { move, width: number("width"), height: number("height"), seed: number("seed") };
    const key = JSON.stringify(body);
    if (key === preview.key) return;
    preview.key = key;
    try {
      const answer = await post("camera_path", body);
      if (answer.ok) { preview.windows = answer.windows; preview.aspect = answer.aspect; }
      else preview.windows = null;
    } catch {
      preview.key = "";
    }
  };
  // ticks while the node is in a graph; stops when it is removed (or was never added within a minute)
  let added = false;
  const born = Date.now();
  const timer = setInterval(() => {
    if (!node.graph) {
      if (added || Date.now() - born > 60_000) clearInterval(timer);
      return;
    }
    added = true;
    preview.frame += 1;
    refresh();
    try { draw(); } catch (error) { clearInterval(timer); console.warn("animstudio camera preview stopped:", error); }
  }, 125);
  const removed = node.onRemoved;
  node.onRemoved = function (...args) {
    clearInterval(timer);
    return removed?.apply(this, args);
  };
  const box = el("div", { className: "animstudio-camera" }, canvas);
  box.style.cssText = "width:100%";
  node.addDOMWidget("camera_preview", "animstudio_camera_preview", box, { serialize: false, hideOnZoom: false,
                                                                        getMinHeight: () => 76 });
  preview.canvas = canvas;
  node.animstudioCameraPreview = preview;
}

// ---- core's audio player on the pack's Load Audio -------------------------------------------------------------

// Core's Comfy.UploadAudio gives every node whose ``audio`` combo has ``audio_upload`` an upload button that drives
// an ``audioUI`` player widget, but core's Comfy.AudioWidget adds that player (a ``required.audioUI`` AUDIO_UI input,
// added in beforeRegisterNodeDef) only to core's own audio nodes. Without it the upload widget throws while the node
// is built (TypeError in onAudioWidgetUpdate) and the editor keeps a stub that goes out without its class_type.
// The pack's loader gets the player the way core's LoadAudio gets it; it is put right after ``audio`` because
// widgets are made in input order and the upload widget looks the player up when it is made. Like core's, the
// player is frontend-only: ComfyUI ignores the ``audioUI`` value, an input the node does not declare.
export const AUDIO_PLAYER_NODES = new Set(["AnimStudioLoadAudio"]);

export function addAudioPlayerInput(nodeData) {
  const required = nodeData?.input?.required;
  if (!required?.audio || required.audioUI) return;
  const entries = Object.entries(required);
  for (const [name] of entries) delete required[name];
  for (const [name, spec] of entries) {
    required[name] = spec;
    if (name === "audio") required.audioUI = ["AUDIO_UI", {}];
  }
}


// a node's run result: the Lip Sync node reports its cues as ui.animstudio_cues: [{mouthCues, metadata?}], audio as
// ui.audio
export function showRunOnWidgets(event) {
  const { node: nodeId, display_node: displayId, output } = event.detail || {};
  const node = app.graph?.getNodeById?.(displayId ?? nodeId);
  if (!node?.animstudioTimeline || !output) return;
  const cues = output.animstudio_cues?.[0];
  if (cues) node.animstudioTimeline.set(cues.mouthCues || [], cues.metadata?.duration, output.audio?.[0]);
}

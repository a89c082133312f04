// The pack's widgets on nodes: a mouth-cue timeline with audio on Lip Sync nodes, a camera-move preview on nodes
// with a camera move, and core's audio player on the pack's Load Audio. Imported by animstudio.js.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { el, post, setting } from "./util.js";

const SHAPE_COLORS = { A: "#4e79a7", B: "#f28e2b", C: "#e15759", D: "#76b7b2", E: "#59a14f",
                       F: "#edc948", G: "#b07aa1", H: "#ff9da7", X: "#555" };

// ---- the mouth-cue timeline on Lip Sync nodes ----------------------------------------------------------------

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

export function addTimeline(node) {
  const canvas = el("canvas", { className: "animstudio-cue-strip", height: 36 });
  canvas.style.cssText = "width:100%;height:36px;display:block";
  const play = el("button", { textContent: "▶", title: "Play the audio", disabled: true });
  const preview = el("button", { textContent: "Preview line", title: "Speak dialogue_text (TTS preview) and time its mouth" });
  const info = el("span", { textContent: "" });
  info.style.cssText = "font-size:11px;color:#aaa;margin-left:4px";
  const audio = new Audio();
  const box = el("div", { className: "animstudio-timeline" }, canvas, el("div", {}, play, preview, info));
  box.style.cssText = "width:100%";
  const timeline = { cues: null, seconds: 0 };
  const redraw = () => drawCues(canvas, timeline.cues, timeline.seconds, audio.paused ? null : audio.currentTime);
  timeline.set = (cues, seconds, audioRef) => {
    timeline.cues = cues;
    timeline.seconds = seconds || (cues?.length ? cues[cues.length - 1].end : 0);
    info.textContent = cues?.length ? `${cues.length} cues, ${timeline.seconds.toFixed(2)} s` : "";
    if (audioRef?.filename) {
      const params = new URLSearchParams({ filename: audioRef.filename, subfolder: audioRef.subfolder || "",
                                           type: audioRef.type || "temp" });
      audio.src = api.apiURL(`/view?${params}`);
      play.disabled = false;
    }
    redraw();
  };
  play.addEventListener("click", () => {
    if (audio.paused) {
      audio.play();
      const tick = () => { redraw(); if (!audio.paused) requestAnimationFrame(tick); };
      requestAnimationFrame(tick);
    } else audio.pause();
  });
  audio.addEventListener("ended", redraw);
  preview.addEventListener("click", async () => {
    const text = node.widgets?.find((w) => w.name === "dialogue_text")?.value;
    if (!text?.trim()) { info.textContent = "dialogue_text is empty"; return; }
    info.textContent = "speaking…";
    const answer = await post("tts_preview", { text, engine: setting("AnimStudio.TTS.DefaultEngine", "espeak") });
    if (!answer.ok) { info.textContent = `${answer.problems?.[0]?.where || "$"}: ${answer.problems?.[0]?.message || answer.error}`; return; }
    timeline.set(answer.cues?.mouthCues || [], answer.seconds, answer.audio);
  });
  node.addDOMWidget("mouth_cue_timeline", "animstudio_timeline", box, { serialize: false, hideOnZoom: false,
                                                                          getMinHeight: () => 70 });
  node.animstudioTimeline = timeline;
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
  const refresh = async () => {
    const move = widget(moveWidgetName)?.value;
    const body = { move, width: widget("width")?.value, height: widget("height")?.value, seed: widget("seed")?.value };
    const key = JSON.stringify(body);
    if (!move || key === preview.key) return;
    preview.key = key;
    const answer = await post("camera_path", body);
    if (answer.ok) { preview.windows = answer.windows; preview.aspect = answer.aspect; }
  };
  const timer = setInterval(() => {
    if (!node.graph) { clearInterval(timer); return; }   // the node was removed
    preview.frame += 1;
    refresh();
    draw();
  }, 125);
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

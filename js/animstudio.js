// Animation Studio's graph-editor extension: a Storyboard sidebar tab (validate, edit shots, build the graph, queue
// the film, per-shot progress), settings, a command, a mouth-cue timeline with audio on Lip Sync nodes and a
// camera-move preview on nodes with a camera move (shot nodes show their first frame through core's ui.images).
// Extension API only.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const TAB_ID = "animstudio-storyboard";
const SHAPES = ["A", "B", "C", "D", "E", "F", "G", "H", "X"];
const SHAPE_COLORS = { A: "#4e79a7", B: "#f28e2b", C: "#e15759", D: "#76b7b2", E: "#59a14f",
                       F: "#edc948", G: "#b07aa1", H: "#ff9da7", X: "#555" };

const state = { panel: null, nodeIds: {}, shots: [], promptId: null, progress: {} };

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  for (const child of children) node.append(child);
  return node;
}

function setting(id, fallback) {
  try {
    const value = app.extensionManager?.setting?.get(id);
    return value ?? fallback;
  } catch {
    return fallback;
  }
}

async function post(route, body) {
  const response = await api.fetchApi(`/animstudio/${route}`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  let answer;
  try {
    answer = await response.json();
  } catch {
    answer = { ok: false, error: `HTTP ${response.status}`, problems: [] };
  }
  if (!response.ok && answer.ok === undefined) answer.ok = false;
  return answer;
}

// ---- the Storyboard panel ----------------------------------------------------------------------------------

function readStoryboard(panel) {
  const text = panel.text.value.trim();
  if (!text) return { problem: { where: "$", message: "paste or open a storyboard JSON first" } };
  try {
    return { storyboard: JSON.parse(text) };
  } catch (exc) {
    return { problem: { where: "$", message: `not JSON: ${exc.message}` } };
  }
}

function showProblems(panel, error, problems) {
  panel.result.replaceChildren(el("div", { className: "animstudio-error", textContent: error || "problems" }));
  const list = el("ul", { className: "animstudio-problems" });
  for (const p of problems || []) {
    list.append(el("li", {}, el("code", { className: "animstudio-where", textContent: p.where }), ` ${p.message}`));
  }
  panel.result.append(list);
}

function showSummary(panel, answer, prefix = "Valid") {
  panel.result.replaceChildren(
    el("div", { className: "animstudio-ok", textContent: `${prefix}: ${answer.shots.length} shot(s)` }),
    el("div", { textContent: `Shots: ${answer.shots.join(", ")}` }),
    el("div", { textContent: `Characters: ${answer.characters.join(", ") || "none"}` }),
  );
  renderShotEditor(panel, answer.camera_moves || []);
}

// the shot editor edits the storyboard JSON in the text box (the one source of truth), field by field
function renderShotEditor(panel, moves) {
  let board;
  try { board = JSON.parse(panel.text.value); } catch { return; }
  if (!Array.isArray(board?.shots)) return;
  const write = () => { panel.text.value = JSON.stringify(board, null, 2); };
  const rows = board.shots.map((shot, index) => {
    const duration = el("input", { className: "animstudio-shot-duration", value: String(shot.duration ?? 3),
                                   title: `$.shots[${index}].duration: seconds, or fit_to_dialogue` });
    duration.style.cssText = "width:5em";
    duration.addEventListener("change", () => {
      const value = duration.value.trim();
      shot.duration = value === "fit_to_dialogue" ? value : Number(value);
      write();
    });
    const move = el("select", { className: "animstudio-shot-move", title: `$.shots[${index}].camera.move` });
    for (const name of moves) move.append(el("option", { value: name, textContent: name }));
    move.value = shot.camera?.move || "static";
    move.addEventListener("change", () => { shot.camera = { ...(shot.camera || {}), move: move.value }; write(); });
    const description = el("input", { className: "animstudio-shot-description", value: shot.description || "",
                                      title: `$.shots[${index}].description` });
    description.style.cssText = "flex:1;min-width:6em";
    description.addEventListener("change", () => { shot.description = description.value; write(); });
    const row = el("div", { className: "animstudio-shot-row" }, el("code", { textContent: shot.id }),
                   duration, move, description);
    row.style.cssText = "display:flex;gap:4px;align-items:center";
    return row;
  });
  panel.result.append(el("div", { className: "animstudio-shot-editor" }, ...rows));
}

async function validate(panel) {
  const { storyboard, problem } = readStoryboard(panel);
  if (problem) return showProblems(panel, "cannot read the storyboard", [problem]);
  const answer = await post("validate", { storyboard });
  if (!answer.ok) return showProblems(panel, answer.error, answer.problems);
  showSummary(panel, answer);
  return answer;
}

async function build(panel) {
  const { storyboard, problem } = readStoryboard(panel);
  if (problem) { showProblems(panel, "cannot read the storyboard", [problem]); return null; }
  panel.status.textContent = "Building the graph…";
  const answer = await post("compile", { storyboard, shape: "film" });
  panel.status.textContent = "";
  if (!answer.ok) { showProblems(panel, answer.error, answer.problems); return null; }
  await app.loadGraphData(answer.workflow);
  state.nodeIds = answer.workflow?.extra?.animstudio?.node_ids || {};
  state.shots = [...new Set(Object.values(state.nodeIds).map(shotOf).filter(Boolean))];
  state.progress = {};
  panel.result.replaceChildren(
    el("div", { className: "animstudio-ok",
                textContent: `Built: ${answer.workflow.nodes.length} nodes, ${state.shots.length} shot(s)` }),
  );
  renderProgress();
  return answer;
}

async function queueFilm(panel) {
  const built = await build(panel);
  if (!built) return;
  panel.status.textContent = "Queueing…";
  await app.queuePrompt(0);
  // queuePrompt's boolean is not reliable (an empty node_errors {} reads as failure); the node errors are
  const nodeErrors = app.lastNodeErrors || {};
  if (Object.keys(nodeErrors).length) {
    // the server refused the prompt: name each failing node by its storyboard id (s1:panel, film:save, ...)
    const problems = [];
    for (const [uiId, info] of Object.entries(nodeErrors)) {
      for (const error of info.errors || []) {
        problems.push({ where: state.nodeIds[uiId] || uiId, message: `${error.message}: ${error.details || ""}` });
      }
    }
    panel.status.textContent = "";
    showProblems(panel, "ComfyUI refused the film", problems);
    return;
  }
  panel.status.textContent = "Queued.";
}

function shotOf(apiId) {
  const id = String(apiId ?? "");
  return id.includes(":") ? id.split(":")[0] : null;
}

function shotOfUiNode(uiId) {
  return shotOf(state.nodeIds[String(uiId)] ?? uiId);
}

function renderProgress() {
  const panel = state.panel;
  if (!panel) return;
  panel.progress.replaceChildren(...state.shots.map((shot) => {
    const p = state.progress[shot] || { status: "waiting" };
    const text = p.status === "running" && p.max ? `${shot}: ${p.node || ""} ${p.value}/${p.max}` : `${shot}: ${p.status}`;
    return el("div", { className: `animstudio-shot animstudio-shot-${p.status}`, textContent: text });
  }));
}

function onExecuting(event) {
  const detail = event.detail;
  const nodeId = detail && typeof detail === "object" ? detail.node : detail;
  if (nodeId === null || nodeId === undefined) {
    for (const shot of state.shots) {
      if (state.progress[shot]?.status === "running") state.progress[shot].status = "done";
    }
    if (state.panel) state.panel.status.textContent = state.shots.length ? "Finished." : "";
    renderProgress();
    return;
  }
  const shot = shotOfUiNode(nodeId);
  for (const other of state.shots) {
    if (other !== shot && state.progress[other]?.status === "running") state.progress[other].status = "done";
  }
  if (shot) {
    state.progress[shot] = { status: "running", node: state.nodeIds[String(nodeId)] || String(nodeId) };
    if (state.panel) state.panel.status.textContent = `Running ${shot}…`;
  }
  renderProgress();
}

function onProgress(event) {
  const { value, max, node } = event.detail || {};
  const shot = shotOfUiNode(node);
  if (!shot) return;
  state.progress[shot] = { status: "running", node: state.nodeIds[String(node)] || String(node), value, max };
  renderProgress();
}

function renderPanel(root) {
  const text = el("textarea", { className: "animstudio-storyboard-text", rows: 16, spellcheck: false,
                                placeholder: "Paste a storyboard JSON here, or open a file." });
  text.style.cssText = "width:100%;font-family:monospace;font-size:12px;box-sizing:border-box";
  const file = el("input", { type: "file", accept: ".json,application/json", className: "animstudio-file" });
  file.addEventListener("change", async () => {
    if (file.files?.[0]) text.value = await file.files[0].text();
  });
  const button = (label, cls, action) => {
    const b = el("button", { textContent: label, className: `animstudio-${cls}` });
    b.style.cssText = "margin:4px 4px 4px 0;padding:4px 10px;cursor:pointer";
    b.addEventListener("click", async () => {
      b.disabled = true;
      try {
        await action(panel);
      } catch (exc) {
        showProblems(panel, `${label} failed`, [{ where: "$", message: String(exc?.message || exc) }]);
      } finally {
        b.disabled = false;
      }
    });
    return b;
  };
  const panel = {
    text,
    result: el("div", { className: "animstudio-result" }),
    status: el("div", { className: "animstudio-status" }),
    progress: el("div", { className: "animstudio-progress" }),
  };
  const container = el("div", { className: "animstudio-panel" },
    el("h3", { textContent: "Storyboard" }), file, text,
    el("div", {}, button("Validate", "validate", validate), button("Build graph", "build", build),
       button("Queue film", "queue", queueFilm)),
    panel.status, panel.result, panel.progress);
  container.style.cssText = "padding:8px;display:flex;flex-direction:column;gap:4px";
  root.replaceChildren(container);
  state.panel = panel;
  renderProgress();
}

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

function addTimeline(node) {
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

function addCameraPreview(node, moveWidgetName) {
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

function onExecuted(event) {
  const { node: nodeId, display_node: displayId, output } = event.detail || {};
  const node = app.graph?.getNodeById?.(displayId ?? nodeId);
  if (!node?.animstudioTimeline || !output) return;
  // the Lip Sync node reports its cues as ui.animstudio_cues: [{mouthCues, metadata?}], audio as ui.audio
  const cues = output.animstudio_cues?.[0];
  if (cues) node.animstudioTimeline.set(cues.mouthCues || [], cues.metadata?.duration, output.audio?.[0]);
}

// ---- registration ---------------------------------------------------------------------------------------------

app.registerExtension({
  name: "animstudio.core",
  settings: [
    { id: "AnimStudio.TTS.DefaultEngine", category: ["AnimStudio", "TTS", "DefaultEngine"],
      name: "Default TTS engine for line previews", type: "combo", defaultValue: "espeak",
      options: ["espeak", "piper", "xtts", "gpt_sovits", "openai"] },
    { id: "AnimStudio.Consistency.Threshold", category: ["AnimStudio", "Consistency", "Threshold"],
      name: "Character consistency threshold (face/embedding similarity)", type: "slider", defaultValue: 0.62,
      attrs: { min: 0, max: 1, step: 0.01 } },
  ],
  commands: [
    { id: "AnimStudio.OpenStoryboard", label: "AnimStudio: Open storyboard", icon: "pi pi-images",
      function: () => app.extensionManager.command.execute(`Workspace.ToggleSidebarTab.${TAB_ID}`) },
  ],
  async setup() {
    app.extensionManager.registerSidebarTab({
      id: TAB_ID, icon: "pi pi-images", title: "Storyboard", tooltip: "AnimStudio storyboard", type: "custom",
      render: renderPanel,
    });
    api.addEventListener("executing", onExecuting);
    api.addEventListener("progress", onProgress);
    api.addEventListener("executed", onExecuted);
  },
  async nodeCreated(node) {
    if (node.comfyClass === "AnimStudioLipSync") addTimeline(node);
    if (node.comfyClass === "AnimStudioShotClip") addCameraPreview(node, "camera_move");
    if (node.comfyClass === "AnimStudioCameraMove") addCameraPreview(node, "move");
  },
});

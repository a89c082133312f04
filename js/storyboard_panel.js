// The Storyboard sidebar panel: validate, edit shots, build the graph, queue the film and show ComfyUI's answer,
// per-shot progress. Imported by animstudio.js.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { el, post } from "./util.js";

const state = { panel: null, nodeIds: {}, shots: [], promptId: null, refused: false, progress: {}, keyframes: {} };

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
    const picker = mouthPicker(board, shot, index, write);
    return picker ? el("div", {}, row, picker) : row;
  });
  panel.result.append(el("div", { className: "animstudio-shot-editor" }, ...rows));
}

// ---- mouths set by a click on the shot's keyframe -------------------------------------------------------------

// The keyframe the shot's `mouths` boxes are in: a supplied keyframe (a path relative to the storyboard, which the
// pack's routes look up in ComfyUI's input folder), else the keyframe a run generated for the shot (its Save Image
// output, remembered from the run's `executed` events). Generated keyframes come back the same from the same seed.
function keyframeUrl(shot) {
  let file = null;
  if (typeof shot.keyframe === "string" && shot.keyframe) {
    const parts = shot.keyframe.replace(/^\.\//, "").split("/");
    file = { filename: parts.pop(), subfolder: parts.join("/"), type: "input" };
  } else {
    file = state.keyframes[shot.id] || null;
  }
  if (!file) return null;
  const query = new URLSearchParams({ filename: file.filename, subfolder: file.subfolder || "", type: file.type });
  return api.apiURL(`/view?${query}`);
}

// Under a shot's row: its keyframe; a click on it puts the chosen character's mouth box there (centred on the
// click, of the size in the two boxes: by default a share of the keyframe's width), written into the storyboard JSON
// as $.shots[i].mouths[character]. The mouths the shot has are outlined on the picture.
const MOUTH_WIDTH_SHARE = 0.12;   // default mouth box width, of the keyframe's width
const MOUTH_ASPECT = 0.6;         // default height, of the box's width

function mouthPicker(board, shot, index, write) {
  const url = keyframeUrl(shot);
  const characters = Object.keys(board.characters || {});
  if (!url || !characters.length) return null;
  const speakers = (shot.dialogue || []).map((line) => line.character).filter((c) => characters.includes(c));
  const who = el("select", { className: "animstudio-mouth-character", title: `$.shots[${index}].mouths: whose mouth` });
  for (const name of [...new Set([...speakers, ...characters])]) who.append(el("option", { value: name, textContent: name }));
  const width = el("input", { className: "animstudio-mouth-width", type: "number", min: 1, title: "mouth box width, keyframe pixels" });
  const height = el("input", { className: "animstudio-mouth-height", type: "number", min: 1, title: "mouth box height, keyframe pixels" });
  for (const box of [width, height]) box.style.cssText = "width:4.5em";
  const img = el("img", { className: "animstudio-keyframe", src: url, alt: `${shot.id} keyframe`,
                          title: "click the mouth to place the chosen character's mouth box" });
  img.style.cssText = "display:block;width:100%;cursor:crosshair;image-rendering:auto";
  const frame = el("div", { className: "animstudio-keyframe-frame" }, img);
  frame.style.cssText = "position:relative;max-width:320px";
  const outline = () => {
    for (const old of frame.querySelectorAll(".animstudio-mouth-box")) old.remove();
    if (!img.naturalWidth) return;
    const scale = img.clientWidth / img.naturalWidth;
    for (const [name, box] of Object.entries(shot.mouths || {})) {
      const mark = el("div", { className: "animstudio-mouth-box", title: name });
      mark.dataset.character = name;
      mark.style.cssText = `position:absolute;pointer-events:none;border:2px solid #ff3b6b;box-sizing:border-box;` +
        `left:${box.x * scale}px;top:${box.y * scale}px;width:${box.width * scale}px;height:${box.height * scale}px`;
      frame.append(mark);
    }
  };
  const sizeFor = () => {
    const box = shot.mouths?.[who.value];
    const w = box?.width ?? Math.max(1, Math.round(img.naturalWidth * MOUTH_WIDTH_SHARE));
    width.value = String(w);
    height.value = String(box?.height ?? Math.max(1, Math.round(w * MOUTH_ASPECT)));
  };
  const place = (cx, cy) => {
    const W = img.naturalWidth, H = img.naturalHeight;
    const w = Math.min(W, Math.max(1, Math.round(Number(width.value) || 1)));
    const h = Math.min(H, Math.max(1, Math.round(Number(height.value) || 1)));
    const x = Math.min(W - w, Math.max(0, Math.round(cx - w / 2)));
    const y = Math.min(H - h, Math.max(0, Math.round(cy - h / 2)));
    shot.mouths = { ...(shot.mouths || {}), [who.value]: { x, y, width: w, height: h } };
    write();
    outline();
  };
  img.addEventListener("load", () => { sizeFor(); outline(); });
  img.addEventListener("click", (event) => {
    if (!img.naturalWidth) return;
    const rect = img.getBoundingClientRect();
    place((event.clientX - rect.left) * img.naturalWidth / rect.width,
          (event.clientY - rect.top) * img.naturalHeight / rect.height);
  });
  who.addEventListener("change", sizeFor);
  const resize = () => {  // a placed box takes the new size about its centre
    const box = shot.mouths?.[who.value];
    if (box) place(box.x + box.width / 2, box.y + box.height / 2);
  };
  width.addEventListener("change", resize);
  height.addEventListener("change", resize);
  const controls = el("div", {}, "mouth of ", who, " size ", width, "×", height);
  controls.style.cssText = "display:flex;gap:4px;align-items:center;font-size:12px";
  const picker = el("div", { className: "animstudio-mouth-picker" }, controls, frame);
  picker.style.cssText = "margin:2px 0 8px 1em";
  return picker;
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
  state.promptId = null;
  state.refused = false;
  state.shots = [...new Set(Object.values(state.nodeIds).map(shotOf).filter(Boolean))];
  state.progress = {};
  panel.result.replaceChildren(
    el("div", { className: "animstudio-ok",
                textContent: `Built: ${answer.workflow.nodes.length} nodes, ${state.shots.length} shot(s)` }),
  );
  renderProgress();
  return answer;
}

// The film goes to ComfyUI through the extension API's api.queuePrompt, with the graph exactly as the editor sends
// it (app.graphToPrompt), so the answer is read where it arrives: {prompt_id, number, node_errors} (HTTP 200), or a
// PromptExecutionError carrying the 400 body {error, node_errors}. app.queuePrompt hands back no answer worth reading:
// its lastNodeErrors is {} both when the prompt is queued and when it is refused for a reason that names no node
// ("a node is missing the class_type property", "Prompt has no outputs").
async function queueAndReadAnswer() {
  const prompt = await app.graphToPrompt();
  try {
    return { accepted: true, body: (await api.queuePrompt(0, prompt)) || {} };
  } catch (exc) {
    return { accepted: false, body: exc?.response || { error: { message: String(exc?.message || exc) } } };
  }
}

// the storyboard id of a node the server names (the UI id it was sent under), else the id itself
function storyboardId(uiId) {
  return state.nodeIds[String(uiId)] || String(uiId);
}

// the node ids ComfyUI names in an error: the keys of node_errors, and "#12" in details like "Node ID '#12'"
function refusedNodes(body) {
  const ids = new Set(Object.keys(body?.node_errors || {}));
  const details = typeof body?.error === "object" ? String(body.error?.details || "") : "";
  for (const match of details.matchAll(/Node ID '#([^']+)'/g)) ids.add(match[1]);
  return [...ids];
}

// the shots ComfyUI holds back: those of the nodes it names, and of the outputs it drops for their errors
// (node_errors[id].dependent_outputs, e.g. a shared checkpoint loader names each keyframe it feeds and the film)
function shotsConcerned(body) {
  const ids = refusedNodes(body);
  for (const info of Object.values(body?.node_errors || {})) ids.push(...(info?.dependent_outputs || []));
  return new Set(ids.map((id) => shotOf(storyboardId(id))).filter(Boolean));
}

function refusalProblems(body) {
  const problems = [];
  const error = body?.error;
  const nodeErrors = body?.node_errors || {};
  if (!Object.keys(nodeErrors).length && error) {
    // a refusal of the whole prompt: its message, at the node its details name (if any)
    const message = typeof error === "object" ? error.message || error.type || "refused" : String(error);
    const nodes = refusedNodes(body);
    const details = typeof error === "object" && error.details ? ` (${error.details})` : "";
    if (nodes.length) for (const id of nodes) problems.push({ where: storyboardId(id), message: message + details });
    else problems.push({ where: "prompt", message: message + details });
  }
  for (const [uiId, info] of Object.entries(nodeErrors)) {
    for (const e of info?.errors?.length ? info.errors : [{ message: "has errors" }]) {
      problems.push({ where: storyboardId(uiId), message: `${e.message}${e.details ? `: ${e.details}` : ""}` });
    }
  }
  return problems;
}

async function queueFilm(panel) {
  const built = await build(panel);
  if (!built) return;
  panel.status.textContent = "Queueing…";
  const answer = await queueAndReadAnswer();
  const problems = refusalProblems(answer.body);
  if (!answer.accepted && !problems.length) problems.push({ where: "prompt", message: "refused, with no reason given" });
  if (!problems.length) {
    state.promptId = answer.body.prompt_id || null;
    panel.status.textContent = "Queued.";
    return;
  }
  // refused, all of it (HTTP 400) or the outputs with errors (HTTP 200 with node_errors): say so, at the nodes by
  // their storyboard ids, and mark the shots held back; no shot is left "waiting" for a run that will not come
  const concerned = shotsConcerned(answer.body);
  for (const shot of state.shots) {
    if (concerned.has(shot)) state.progress[shot] = { status: "refused" };
    else if (!answer.accepted) state.progress[shot] = { status: "not-queued" };
  }
  const error = answer.body?.error;
  const summary = !answer.accepted
    ? `ComfyUI refused the film${typeof error === "object" && error?.message ? `: ${error.message}` : ""}`
    : "ComfyUI refused part of the film: only the outputs without errors were queued";
  state.promptId = answer.accepted ? answer.body.prompt_id || null : null;
  state.refused = !answer.accepted;
  panel.status.textContent = answer.accepted ? "Queued in part." : "Refused by ComfyUI.";
  showProblems(panel, summary, problems);
  renderProgress();
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
    const label = p.status.replace("-", " ");
    const text = p.status === "running" && p.max ? `${shot}: ${p.node || ""} ${p.value}/${p.max}` : `${shot}: ${label}`;
    return el("div", { className: `animstudio-shot animstudio-shot-${p.status}`, textContent: text });
  }));
}

const HELD_BACK = new Set(["refused", "not-queued"]);

export function onExecuting(event) {
  const detail = event.detail;
  const nodeId = detail && typeof detail === "object" ? detail.node : detail;
  if (nodeId === null || nodeId === undefined) {
    for (const shot of state.shots) {
      if (state.progress[shot]?.status === "running") state.progress[shot].status = "done";
    }
    if (state.panel && !state.refused) state.panel.status.textContent = state.shots.length ? "Finished." : "";
    renderProgress();
    return;
  }
  const shot = shotOfUiNode(nodeId);
  if (HELD_BACK.has(state.progress[shot]?.status)) return;
  for (const other of state.shots) {
    if (other !== shot && state.progress[other]?.status === "running") state.progress[other].status = "done";
  }
  if (shot) {
    state.progress[shot] = { status: "running", node: state.nodeIds[String(nodeId)] || String(nodeId) };
    if (state.panel) state.panel.status.textContent = `Running ${shot}…`;
  }
  renderProgress();
}

export function onProgress(event) {
  const { value, max, node } = event.detail || {};
  const shot = shotOfUiNode(node);
  if (!shot || HELD_BACK.has(state.progress[shot]?.status)) return;
  state.progress[shot] = { status: "running", node: state.nodeIds[String(node)] || String(node), value, max };
  renderProgress();
}

export function renderPanel(root) {
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

// a generated keyframe (Save Image under animstudio/keyframes/): the shot editor's mouth picker shows it
export function onExecuted(event) {
  const { node: nodeId, display_node: displayId, output } = event.detail || {};
  const saved = output?.images?.find?.((image) => String(image.subfolder || "").startsWith("animstudio/keyframes"));
  const shot = saved && shotOfUiNode(displayId ?? nodeId);
  if (shot) state.keyframes[shot] = saved;
}

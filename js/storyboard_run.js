// Building and queuing the storyboard's film, and ComfyUI's answers: the built graph goes into the storyboard's own
// workflow tab (one tab, reused); Queue rebuilds only when the storyboard changed and asks before a rebuild would
// throw away edits made on the canvas; every refusal (node errors, a missing class, an HTTP error, an exception in a
// node, an interrupt) is shown with its message at the shot it belongs to; progress names the shot and the node at
// work. Imported by storyboard_panel.js.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { el, post } from "./util.js";
import { showRunOnWidgets } from "./node_widgets.js";
import { changed, graphFingerprint, persist, state, storyboardWorkflowActive } from "./storyboard_state.js";

const FILM_ROW = "film";

function say(message, kind = "info") {
  state.status = { message, kind };
  changed("run");
}

export function shotOf(apiId) {
  const id = String(apiId ?? "");
  return id.includes(":") ? id.split(":")[0] : null;
}

function shotOfUiNode(uiId) {
  return shotOf(state.nodeIds[String(uiId)] ?? uiId);
}

// the storyboard id of a node the server names (the UI id it was sent under), else the id itself
function storyboardId(uiId) {
  return state.nodeIds[String(uiId)] || String(uiId);
}

function nodeTitle(uiId) {
  return app.graph?.getNodeById?.(Number(uiId))?.title || storyboardId(uiId);
}

export async function validate() {
  if (!state.board) { state.problems = [{ where: "$", message: "open or paste a storyboard first" }]; say("", "error"); return null; }
  const answer = await post("validate", { storyboard: state.board, folder: state.folder });
  state.problems = answer.ok ? [] : answer.problems?.length ? answer.problems : [{ where: "$", message: answer.error }];
  say(answer.ok ? `Valid: ${answer.shots.length} shot(s), ${answer.characters.length} character(s), 0 problems`
    : `${answer.error}: ${state.problems.length} problem(s)`, answer.ok ? "ok" : "error");
  return answer.ok ? answer : null;
}

function openWorkflow() {
  const store = app.extensionManager?.workflow;
  const open = store?.openWorkflows || [];
  return state.workflow && open.includes(state.workflow) ? state.workflow : null;
}

export async function build() {
  if (!(await validate())) return null;
  say("Building the graph…");
  const answer = await post("compile", { storyboard: state.board, folder: state.folder, shape: "film" });
  if (!answer.ok) {
    state.problems = answer.problems?.length ? answer.problems : [{ where: "$", message: answer.error }];
    say(answer.error, "error");
    return null;
  }
  const workflow = answer.workflow;
  const builtFrom = JSON.stringify(state.board);
  workflow.extra.animstudio.storyboard = { folder: state.folder, storyboard: state.board, view: state.view };
  const title = state.board.project?.title || state.folder || "storyboard";
  // the storyboard's own tab when it is still open (no "Unsaved Workflow (2)", "(3)"...), else a new one
  await app.loadGraphData(workflow, true, true, openWorkflow() || `Storyboard - ${title}`);
  state.workflow = app.extensionManager?.workflow?.activeWorkflow || null;
  state.nodeIds = workflow.extra.animstudio.node_ids || {};
  state.shots = [...state.board.shots.map((s) => s.id), FILM_ROW];
  state.progress = {};
  state.promptId = null;
  state.refused = false;
  state.built = { board: builtFrom, fingerprint: graphFingerprint() };
  persist();
  say(`Built: ${workflow.nodes.length} nodes, ${state.board.shots.length} shot(s)`, "ok");
  return answer;
}

async function confirmRebuild() {
  const message = "The graph was edited on the canvas since it was built, and the storyboard changed too. " +
    "Rebuild from the storyboard (the canvas edits are lost)?";
  const dialog = app.extensionManager?.dialog;
  if (dialog?.confirm) return !!(await dialog.confirm({ title: "Rebuild the film's graph?", message, type: "overwrite" }));
  return window.confirm(message);
}

// the graph to queue: the canvas as it is when it is the storyboard's and the storyboard has not changed since it
// was built (canvas edits are kept), else a fresh build (after asking, when that would overwrite canvas edits)
async function graphToQueue() {
  if (openWorkflow() && !storyboardWorkflowActive() && state.workflow.activeState) {
    // back to the storyboard's tab, as the frontend's own tab switch does it (its graph as last edited)
    await app.loadGraphData(JSON.parse(JSON.stringify(state.workflow.activeState)), true, true, state.workflow);
  }
  const unchanged = state.built && state.built.board === JSON.stringify(state.board);
  const edited = state.built && openWorkflow() && state.built.fingerprint !== graphFingerprint();
  if (unchanged && openWorkflow()) return true;
  if (edited && !(await confirmRebuild())) { say("Not queued: the canvas edits were kept.", "info"); return false; }
  return !!(await build());
}

// The film goes to ComfyUI through the extension API's api.queuePrompt, with the graph exactly as the editor sends
// it (app.graphToPrompt), so the answer is read where it arrives: {prompt_id, number, node_errors} (HTTP 200), or a
// PromptExecutionError carrying the 400 body {error, node_errors}.
async function queueAndReadAnswer() {
  const prompt = await app.graphToPrompt();
  try {
    return { accepted: true, body: (await api.queuePrompt(0, prompt)) || {} };
  } catch (exc) {
    return { accepted: false, body: exc?.response || { error: { message: String(exc?.message || exc) } } };
  }
}

// the node ids ComfyUI names in an error: the keys of node_errors, and "#12" in details like "Node ID '#12'"
function refusedNodes(body) {
  const ids = new Set(Object.keys(body?.node_errors || {}));
  const details = typeof body?.error === "object" ? String(body.error?.details || "") : "";
  for (const match of details.matchAll(/Node ID '#([^']+)'/g)) ids.add(match[1]);
  return [...ids];
}

// the shots ComfyUI holds back: those of the nodes it names, and of the outputs it drops for their errors
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
    const message = typeof error === "object" ? error.message || error.type || "refused" : String(error);
    const details = typeof error === "object" && error.details ? ` (${error.details})` : "";
    const nodes = refusedNodes(body);
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

export async function queueFilm() {
  if (!(await graphToQueue())) return;
  say("Queueing…");
  state.promptId = null;
  state.progress = {};
  state.runFailed = false;
  state.finished = false;
  state.awaiting = true;
  const answer = await queueAndReadAnswer();
  state.awaiting = false;
  const problems = refusalProblems(answer.body);
  if (!answer.accepted && !problems.length) problems.push({ where: "prompt", message: "refused, with no reason given" });
  state.problems = problems;
  if (!problems.length) {
    state.promptId = answer.body.prompt_id || null;
    if (!state.finished) say("Queued.", "ok");
    watchHistory(state.promptId);
    return;
  }
  // refused, all of it (HTTP 400) or the outputs with errors (HTTP 200 with node_errors): at the nodes by their
  // storyboard ids, the shots held back marked; no shot is left "waiting" for a run that will not come
  const concerned = shotsConcerned(answer.body);
  for (const shot of state.shots) {
    if (concerned.has(shot)) state.progress[shot] = { status: "refused" };
    else if (!answer.accepted) state.progress[shot] = { status: "not-queued" };
  }
  const error = answer.body?.error;
  state.promptId = answer.accepted ? answer.body.prompt_id || null : null;
  state.refused = !answer.accepted;
  say(!answer.accepted ? `ComfyUI refused the film${typeof error === "object" && error?.message ? `: ${error.message}` : ""}`
    : "ComfyUI refused part of the film: only the outputs without errors were queued", "error");
}

export function progressRows() {
  const activity = el("div", { className: "animstudio-activity", textContent: state.activity || "" });
  return [activity, ...state.shots.map((shot) => {
    const p = state.progress[shot] || { status: "waiting" };
    const label = p.status.replace("-", " ");
    const text = p.status === "running" ? `${shot}: running${p.max ? ` ${p.value}/${p.max}` : ""}` : `${shot}: ${label}`;
    return el("div", { className: `animstudio-shot animstudio-shot-${p.status}`, textContent: text });
  })];
}

const HELD_BACK = new Set(["refused", "not-queued", "failed"]);

// an event of the film the panel queued: its prompt id, or (while /prompt has not answered yet: a small or cached
// prompt may run before its answer arrives) any prompt
function ours(event) {
  const id = event.detail?.prompt_id;
  if (state.awaiting && !state.promptId) return true;
  return !!state.promptId && (!id || id === state.promptId);
}

// the prompt ran to its end: every shot it was given is done (those ComfyUI had cached never report running), unless
// a node failed: then what did not finish is marked so
function finish() {
  if (state.finished) return;
  state.finished = true;
  fillFromHistory(state.promptId);
  state.activity = "";
  for (const shot of state.shots) {
    const status = state.progress[shot]?.status;
    if (HELD_BACK.has(status)) continue;
    state.progress[shot] = { status: state.runFailed && status !== "done" ? "stopped" : "done" };
  }
  if (!state.refused && state.status?.kind !== "error") say("Finished.", "ok");
  else changed("run");
}

export function onExecutionSuccess(event) {
  if (ours(event)) finish();
}

// The end of a run as ComfyUI's history keeps it, for when its websocket messages never arrived (the socket was
// reconnecting, the page was busy): asked when the queue empties and when the socket reconnects, while a film the
// panel queued has not been seen to end. An error recorded there is shown as execution_error would have shown it.
async function historyEntry(id) {
  try {
    const response = await api.fetchApi(`/history/${encodeURIComponent(id)}`);
    return response.ok ? (await response.json())?.[id] : null;
  } catch { return null; }
}

function showOutputs(entry) {
  for (const [nodeId, output] of Object.entries(entry.outputs || {})) {
    onExecuted({ detail: { node: nodeId, output } });
    showRunOnWidgets({ detail: { node: nodeId, output } });
  }
}

// what the run's nodes showed, read back once it has ended: an "executed" message lost on the way still fills the
// cards, the film and the Lip Sync node's timeline
async function fillFromHistory(id) {
  const entry = id && await historyEntry(id);
  if (entry && id === state.promptId) showOutputs(entry);
}

export async function settleFromHistory() {
  const id = state.promptId;
  if (!id || state.finished) return;
  const entry = await historyEntry(id);
  if (!entry || !entry.status?.completed && entry.status?.status_str !== "error" || id !== state.promptId) return;
  showOutputs(entry);
  const failure = (entry.status.messages || []).find(([kind]) => kind === "execution_error" || kind === "execution_interrupted");
  if (failure && !state.runFailed) onExecutionError({ type: failure[0], detail: { ...failure[1], prompt_id: id } });
  finish();
}

// a socket that died without a word sends neither messages nor "reconnected": while the film runs, its history is
// also read every few seconds
const HISTORY_EVERY_MS = 5000;

function watchHistory(promptId) {
  const timer = setInterval(() => {
    if (state.promptId !== promptId || state.finished) clearInterval(timer);
    else settleFromHistory();
  }, HISTORY_EVERY_MS);
}

export function onStatus(event) {
  if (state.promptId && !state.finished && !(event.detail?.exec_info?.queue_remaining > 0)) settleFromHistory();
}

export function onExecuting(event) {
  if (!ours(event)) return;
  const detail = event.detail;
  const nodeId = detail && typeof detail === "object" ? detail.node : detail;
  if (nodeId === null || nodeId === undefined) { finish(); return; }
  const shot = shotOfUiNode(nodeId);
  if (HELD_BACK.has(state.progress[shot]?.status)) return;
  for (const other of state.shots) {
    if (other !== shot && state.progress[other]?.status === "running") state.progress[other].status = "done";
  }
  if (shot) {
    state.progress[shot] = { status: "running", title: nodeTitle(nodeId) };
    working(shot, nodeTitle(nodeId));
  }
}

// the progress line (beside the answer to the queueing, which it never hides): the shot and the node at work
function named(shot, title) {
  return title.startsWith(shot) ? title : `${shot} · ${title}`;
}

function working(shot, title, value, max) {
  state.activity = `Running ${named(shot, title)}${max ? ` ${value}/${max}` : ""}`;
  changed("run");
}


export function onProgress(event) {
  const { value, max, node } = event.detail || {};
  if (!ours(event)) return;
  const shot = shotOfUiNode(node);
  if (!shot || HELD_BACK.has(state.progress[shot]?.status)) return;
  state.progress[shot] = { status: "running", title: nodeTitle(node), value, max };
  working(shot, nodeTitle(node), value, max);
}

// an exception in a node, or an interrupt: an error at the node's shot, the run's other shots not left waiting
export function onExecutionError(event) {
  if (!ours(event)) return;
  const detail = event.detail || {};
  const shot = shotOfUiNode(detail.node_id) || FILM_ROW;
  state.progress[shot] = { status: "failed" };
  state.runFailed = true;
  state.activity = "";
  const message = detail.exception_message || (event.type === "execution_interrupted" ? "interrupted" : "failed");
  state.problems = [{ where: storyboardId(detail.node_id ?? "prompt"), message: `${detail.node_type || ""} ${message}`.trim() }];
  say(event.type === "execution_interrupted" ? `Interrupted at ${named(shot, nodeTitle(detail.node_id))}`
    : `Failed at ${named(shot, nodeTitle(detail.node_id))}`, "error");
}

// a generated keyframe (Save Image under animstudio/keyframes/) becomes its card's picture; the film Save Film
// wrote (with ui.timeline, each shot's time on screen) is what the cards and the strip play
export function onExecuted(event) {
  const { node: nodeId, display_node: displayId, output } = event.detail || {};
  const saved = output?.images?.find?.((image) => String(image.subfolder || "").startsWith("animstudio/keyframes"));
  const shot = saved && shotOfUiNode(displayId ?? nodeId);
  if (shot) state.keyframes[shot] = saved;
  if (output?.timeline && output?.images?.[0]) {
    const file = output.images[0];
    const query = new URLSearchParams({ filename: file.filename, subfolder: file.subfolder || "", type: file.type || "output" });
    state.film = { url: api.apiURL(`/view?${query}`), timeline: output.timeline };
  }
  if (shot || state.film) changed("run");
}

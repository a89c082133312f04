// The Storyboard panel's state, one object every panel module reads and writes, and where it is kept: with the
// storyboard's workflow (its extra.animstudio.storyboard, saved and restored by the frontend with the workflow) and
// in localStorage (a draft not built yet, and the last storyboard opened), so closing the tab or reloading the page
// loses nothing. Imported by the panel modules; registers no extension.
import { app } from "../../scripts/app.js";

const DRAFT_KEY = "AnimStudio.Storyboard";

export const state = {
  panel: null,          // the panel's DOM parts while the tab is open
  folder: null,         // the storyboard's folder in ComfyUI's input folder (its paths are read from there)
  board: null,          // the storyboard (the one source of truth; the JSON view is a second view of it)
  text: "",             // the JSON view's text (may be unfinished JSON while typing)
  view: "cards",        // "cards" or "json"
  selected: null,       // the index of the shot whose fields are open
  problems: [],         // [{where, message}] from the last validation or refusal
  built: null,          // {board, fingerprint}: the storyboard and the canvas graph at the last build
  workflow: null,       // the storyboard's own workflow tab (reused by Build and Queue)
  nodeIds: {}, shots: [], promptId: null, refused: false, progress: {}, keyframes: {},
  film: null,           // {url, timeline} of the last film the run saved
  series: null,         // {query, hits, message}: the last search of the series library
};

const listeners = new Set();

export function onStateChange(listener) { listeners.add(listener); }

function kept() {
  return { folder: state.folder, storyboard: state.board, view: state.view, selected: state.selected };
}

// the storyboard's workflow, when it is the one on the canvas
export function storyboardWorkflowActive() {
  const store = app.extensionManager?.workflow;
  return !!state.workflow && store?.activeWorkflow === state.workflow;
}

export function persist() {
  try {
    localStorage.setItem(DRAFT_KEY, JSON.stringify(kept()));
  } catch { /* storage full or blocked: the workflow still keeps it */ }
  if (storyboardWorkflowActive() && app.graph) {
    app.graph.extra = app.graph.extra || {};
    app.graph.extra.animstudio = { ...(app.graph.extra.animstudio || {}), storyboard: { ...kept(), built: state.built } };
  }
}

// the storyboard changed (what: "board", "view", "selection", "run"): keep it, then redraw
export function changed(what = "board") {
  if (what === "board") state.text = state.board ? JSON.stringify(state.board, null, 2) : "";
  persist();
  for (const listener of listeners) listener(what);
}

export function setBoard(board, folder = state.folder) {
  state.board = board;
  state.folder = folder;
  state.selected = null;
  state.problems = [];
  changed("board");
}

// on opening the tab: what this page had, else the active workflow's storyboard, else the last draft
export function restore() {
  if (state.board) return;
  let saved = app.graph?.extra?.animstudio?.storyboard;
  if (saved?.storyboard) {
    state.workflow = app.extensionManager?.workflow?.activeWorkflow || null;
    state.built = saved.built?.board ? saved.built : null;
  } else {
    try { saved = JSON.parse(localStorage.getItem(DRAFT_KEY) || "null"); } catch { saved = null; }
  }
  if (!saved?.storyboard || typeof saved.storyboard !== "object") return;
  state.board = saved.storyboard;
  state.folder = saved.folder || null;
  state.view = saved.view === "json" ? "json" : "cards";
  state.selected = Number.isInteger(saved.selected) ? saved.selected : null;
  state.text = JSON.stringify(state.board, null, 2);
}

// the parts of the canvas graph a user edits (node types, widget values, modes, links): a built graph and the
// canvas compare equal until someone changes the graph
export function graphFingerprint() {
  const graph = app.graph?.serialize?.();
  if (!graph) return "";
  const nodes = (graph.nodes || []).map((n) => [n.id, n.type, n.mode, n.widgets_values]).sort((a, b) => a[0] - b[0]);
  const links = (graph.links || []).map((l) => (Array.isArray(l) ? l.slice(0, 5) : [l.id, l.origin_id, l.origin_slot,
                                                                                     l.target_id, l.target_slot]));
  return hash(JSON.stringify([nodes, links.sort((a, b) => a[0] - b[0])]));
}

function hash(text) {  // FNV-1a, 32 bits: a fingerprint small enough to keep in the workflow
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return `${text.length}:${h.toString(16)}`;
}

// The Storyboard sidebar panel: storyboards kept in ComfyUI's input folder as folders (listed, opened, uploaded as a
// folder or a zip, the bundled example offered on first use), shown as cards or as raw JSON (two views of one
// storyboard, kept in step), saved back to their folder; Validate, Build graph and Queue film with ComfyUI's answer
// and per-shot progress. Imported by animstudio.js.
import { api } from "../../scripts/api.js";
import { el, post } from "./util.js";
import { changed, onStateChange, persist, restore, setBoard, state } from "./storyboard_state.js";
import { problemList, renderCards } from "./storyboard_cards.js";
import { build, progressRows, queueFilm, validate } from "./storyboard_run.js";
import { seriesSearch } from "./storyboard_series.js";

export { onExecuted, onExecuting, onExecutionError, onExecutionSuccess, onProgress, onStatus, settleFromHistory }
  from "./storyboard_run.js";

const ZIP_UPLOADS = "animstudio/uploads";

function button(label, cls, action, title = "") {
  const b = el("button", { textContent: label, className: `animstudio-${cls}`, title });
  b.style.cssText = "margin:2px 4px 2px 0;padding:3px 8px;cursor:pointer";
  b.addEventListener("click", async () => {
    b.disabled = true;
    try {
      await action();
    } catch (exc) {
      state.problems = [{ where: "$", message: String(exc?.message || exc) }];
      state.status = { message: `${label} failed`, kind: "error" };
      changed("run");
    } finally {
      b.disabled = false;
    }
  });
  return b;
}

// ---- the library: storyboards in the input folder -----------------------------------------------------------------

async function refreshLibrary() {
  const response = await api.fetchApi("/animstudio/storyboards");
  const listed = response.ok ? await response.json() : null;
  state.library = listed?.ok ? listed : { storyboards: [], examples: [] };
  changed("library");
}

async function openFolder(folder) {
  const answer = await post("storyboard_open", { folder });
  if (!answer.ok) { state.problems = answer.problems; state.status = { message: answer.error, kind: "error" }; changed("run"); return; }
  setBoard(answer.storyboard, answer.folder);
  state.status = { message: `Opened ${answer.folder}`, kind: "ok" };
  changed("run");
}

async function openExample(name) {
  const answer = await post("storyboard_example", { name });
  if (!answer.ok) { state.problems = answer.problems; changed("run"); return; }
  await refreshLibrary();
  setBoard(answer.storyboard, answer.folder);
}

async function uploadFile(file, subfolder) {
  const body = new FormData();
  body.append("image", file, file.name);
  body.append("subfolder", subfolder);
  body.append("type", "input");
  body.append("overwrite", "true");
  const response = await api.fetchApi("/upload/image", { method: "POST", body });
  if (!response.ok) throw new Error(`uploading ${file.name}: HTTP ${response.status}`);
  return response.json();
}

// a folder chosen in the browser (its files' webkitRelativePath start with its name) goes to input/<name>/
async function uploadFolder(files) {
  const list = [...files];
  const top = list[0]?.webkitRelativePath?.split("/")[0];
  if (!top || !list.some((f) => f.webkitRelativePath === `${top}/storyboard.json`)) {
    throw new Error("the folder has no storyboard.json at its top");
  }
  for (const [i, file] of list.entries()) {
    const parts = file.webkitRelativePath.split("/").slice(0, -1);
    if (parts.some((p) => p.startsWith("."))) continue;
    state.status = { message: `Uploading ${i + 1}/${list.length}: ${file.name}` };
    changed("run");
    await uploadFile(file, parts.join("/"));
  }
  await refreshLibrary();
  await openFolder(top);
}

async function uploadZip(file) {
  const uploaded = await uploadFile(file, ZIP_UPLOADS);
  const answer = await post("storyboard_unzip", { file: `${uploaded.subfolder}/${uploaded.name}` });
  if (!answer.ok) { state.problems = answer.problems; state.status = { message: answer.error, kind: "error" }; changed("run"); return; }
  await refreshLibrary();
  setBoard(answer.storyboard, answer.folder);
}

async function save() {
  if (!state.folder) throw new Error("this storyboard has no folder in the input folder: upload it as a folder first");
  const answer = await post("storyboard_save", { folder: state.folder, storyboard: state.board });
  state.status = answer.ok ? { message: `Saved ${state.folder}/storyboard.json`, kind: "ok" }
    : { message: answer.error, kind: "error" };
  changed("run");
}

function library() {
  const known = state.library || { storyboards: [], examples: [] };
  const pick = el("select", { className: "animstudio-library", title: "storyboards in ComfyUI's input folder" });
  pick.append(el("option", { value: "", textContent: known.storyboards.length ? "open a storyboard…" : "no storyboards yet" }));
  for (const s of known.storyboards) pick.append(el("option", { value: s.folder, textContent: s.title ? `${s.folder} · ${s.title}` : s.folder }));
  pick.value = "";
  pick.style.cssText = "flex:1;min-width:0";
  pick.addEventListener("change", () => pick.value && openFolder(pick.value));
  const folderInput = el("input", { type: "file", className: "animstudio-upload-folder-input", webkitdirectory: true, multiple: true });
  const zipInput = el("input", { type: "file", className: "animstudio-upload-zip-input", accept: ".zip,application/zip" });
  for (const input of [folderInput, zipInput]) input.style.display = "none";
  folderInput.addEventListener("change", () => folderInput.files?.length && run(() => uploadFolder(folderInput.files)));
  zipInput.addEventListener("change", () => zipInput.files?.[0] && run(() => uploadZip(zipInput.files[0])));
  const row = el("div", {}, pick);
  row.style.cssText = "display:flex;gap:4px;align-items:center";
  const uploads = el("div", {}, button("Upload storyboard folder", "upload-folder", () => folderInput.click()),
                     button("Upload zip", "upload-zip", () => zipInput.click()), folderInput, zipInput);
  const installed = new Set(known.storyboards.map((s) => s.folder));
  const offered = known.examples.filter((e) => !installed.has(e.name));
  if (offered.length && !state.board) {
    uploads.append(...offered.map((e) => button(`Open the example: ${e.title || e.name}`, "example", () => openExample(e.name))));
  }
  return el("div", { className: "animstudio-library-row" }, row, uploads);
}

async function run(action) {
  try { await action(); } catch (exc) {
    state.problems = [{ where: "$", message: String(exc?.message || exc) }];
    state.status = { message: "failed", kind: "error" };
    changed("run");
  }
}

// ---- the two views ---------------------------------------------------------------------------------------------

function jsonView() {
  const text = el("textarea", { className: "animstudio-storyboard-text", rows: 24, spellcheck: false,
                                placeholder: "Paste a storyboard JSON here." });
  text.value = state.text;
  text.style.cssText = "width:100%;font-family:monospace;font-size:12px;box-sizing:border-box";
  const note = el("div", { className: "animstudio-json-note" });
  text.addEventListener("input", () => {
    state.text = text.value;
    try {
      const board = JSON.parse(text.value);
      if (!board || typeof board !== "object" || Array.isArray(board)) throw new Error("expected an object");
      state.board = board;
      persist();
      note.textContent = "";
    } catch (exc) {
      note.textContent = `not JSON yet: ${exc.message} (the cards keep the last good storyboard)`;
    }
  });
  return el("div", {}, text, note);
}

function views() {
  const tab = (name, label) => {
    const b = el("button", { textContent: label, className: `animstudio-view-${name}` });
    b.style.cssText = `padding:2px 10px;${state.view === name ? "font-weight:bold;border-bottom:2px solid #4e79a7" : ""}`;
    b.addEventListener("click", () => { state.view = name; changed("view"); });
    return b;
  };
  return el("div", { className: "animstudio-views" }, tab("cards", "Cards"), tab("json", "JSON"));
}

function statusLine() {
  const s = state.status || {};
  const line = el("div", { className: `animstudio-status animstudio-${s.kind || "info"}`, textContent: s.message || "" });
  line.style.cssText = `overflow-wrap:anywhere;color:${s.kind === "error" ? "#e15759" : s.kind === "ok" ? "#59a14f" : "inherit"}`;
  const parts = [line];
  if (state.problems?.length && s.kind === "error") parts.push(problemList(state.problems));
  return el("div", { className: "animstudio-result" }, ...parts);
}

function draw() {
  const panel = state.panel;
  if (!panel?.root?.isConnected) return;
  const name = state.folder ? `${state.folder}/storyboard.json` : state.board ? "(not saved in the input folder)" : "";
  const body = el("div", { className: "animstudio-view" });
  if (state.view === "json") body.append(jsonView());
  else renderCards(body);
  const actions = el("div", {}, button("Validate", "validate", validate), button("Build graph", "build", build),
                     button("Queue film", "queue", queueFilm), button("Save", "save", save, "write it back to its folder"));
  panel.root.replaceChildren(el("div", { className: "animstudio-panel" },
    el("h3", { textContent: "Storyboard" }), library(), seriesSearch(),
    el("div", { className: "animstudio-file-name", textContent: name }), views(), actions, statusLine(), body,
    el("div", { className: "animstudio-progress" }, ...progressRows())));
  const container = panel.root.firstChild;
  container.style.cssText = "padding:8px;display:flex;flex-direction:column;gap:6px;font-size:13px";
}

let drawing = false;
onStateChange((what) => {
  if (drawing) return;
  drawing = true;
  queueMicrotask(() => { drawing = false; draw(); });
});

export function renderPanel(root) {
  state.panel = { root };
  restore();
  draw();
  refreshLibrary();
}

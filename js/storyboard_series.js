// The Storyboard panel's series library: search the project library (animstudio-library.db in the storyboard's
// folder, else the input folder) by meaning, in any of its languages, and take a character it knows into the
// storyboard as the library has it (description, wardrobe, age, voice, LoRA), so an episode reuses the series'
// people instead of inventing new ones. Imported by storyboard_panel.js.
import { el, post } from "./util.js";
import { changed, state } from "./storyboard_state.js";

const TAKEN = ["name", "description", "wardrobe", "age", "voice", "lora", "language", "mouth_shapes"];

async function search(query) {
  state.series = { query, hits: [], message: "Searching…" };
  changed("run");
  const answer = await post("library_search", { query, folder: state.folder || undefined, k: 8 });
  state.series = answer.ok
    ? { query, hits: answer.hits, message: answer.hits.length ? `${answer.library}: ${answer.hits.length} closest` : "nothing found" }
    : { query, hits: [], message: answer.problems?.[0]?.message || answer.error, error: true };
  changed("run");
}

function takeCharacter(hit) {
  if (!state.board) state.board = { version: 1, project: { title: hit.series || "Untitled" }, shots: [] };
  const characters = (state.board.characters = state.board.characters || {});
  if (characters[hit.key]) {
    state.series = { ...state.series, message: `${hit.key} is already in the storyboard` };
  } else {
    characters[hit.key] = Object.fromEntries(TAKEN.filter((k) => hit.data?.[k] != null).map((k) => [k, hit.data[k]]));
    state.series = { ...state.series, message: `Took ${hit.name || hit.key} from the library` };
  }
  changed("board");
}

function hitRow(hit) {
  const label = `${hit.score.toFixed(2)} · ${hit.kind} · ${hit.name || hit.key}${hit.episode ? ` (episode ${hit.episode})` : ""}`;
  const row = el("div", { className: `animstudio-series-hit animstudio-series-${hit.kind}` },
    el("div", { textContent: label, style: "font-weight:bold" }),
    el("div", { textContent: hit.text, style: "opacity:0.8;overflow-wrap:anywhere" }));
  if (hit.kind === "character") {
    const take = el("button", { textContent: "Use in storyboard", className: "animstudio-series-take" });
    take.style.cssText = "padding:1px 6px;margin-top:2px";
    take.addEventListener("click", () => takeCharacter(hit));
    row.append(take);
  }
  row.style.cssText = "border-left:3px solid #4e79a7;padding:2px 6px;margin:3px 0";
  return row;
}

export function seriesSearch() {
  const current = state.series || {};
  const input = el("input", { type: "search", className: "animstudio-series-query", value: current.query || "",
                              placeholder: "Search the series library (any language)…" });
  input.style.cssText = "flex:1;min-width:0";
  input.addEventListener("keydown", (e) => { if (e.key === "Enter" && input.value.trim()) search(input.value.trim()); });
  const go = el("button", { textContent: "Search", className: "animstudio-series-search" });
  go.addEventListener("click", () => input.value.trim() && search(input.value.trim()));
  const row = el("div", {}, input, go);
  row.style.cssText = "display:flex;gap:4px;align-items:center";
  const note = el("div", { className: "animstudio-series-note", textContent: current.message || "" });
  if (current.error) note.style.color = "#e15759";
  return el("details", { className: "animstudio-series", open: !!current.query },
    el("summary", { textContent: "Series library" }), row, note, ...(current.hits || []).map(hitRow));
}

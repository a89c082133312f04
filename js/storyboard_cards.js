// The storyboard as you see it: the cast (reference picture, voice, a ▶ preview of the voice) and a strip of shot
// cards (thumbnail, duration, camera move, who says what), reordered by dragging (or ◀ ▶), added and removed; a card
// opens its shot's fields, labelled, lines edited in place; problems sit on the card they belong to and a click on
// one selects its field. After a run a card plays its shot's stretch of the film on hover, and the strip plays the
// film. Imported by storyboard_panel.js.
import { api } from "../../scripts/api.js";
import { el, post } from "./util.js";
import { changed, state } from "./storyboard_state.js";
import { mouthPicker } from "./storyboard_mouths.js";

const CAMERA_MOVES = ["static", "pan_left", "pan_right", "tilt_up", "tilt_down", "zoom_in", "zoom_out", "dolly_in",
                      "dolly_out", "shake"];

function viewUrl(file) {
  const query = new URLSearchParams({ filename: file.filename, subfolder: file.subfolder || "", type: file.type });
  return api.apiURL(`/view?${query}`);
}

// a file the storyboard names (relative to its own folder) as ComfyUI's /view of the input folder shows it
export function inputFileUrl(relative) {
  if (typeof relative !== "string" || !relative) return null;
  const parts = [state.folder, ...relative.replace(/^\.\//, "").split("/")].filter(Boolean);
  return viewUrl({ filename: parts.pop(), subfolder: parts.join("/"), type: "input" });
}

// the shot's picture: its panel or supplied keyframe, else the keyframe a run generated for it
export function shotPictureUrl(shot) {
  if (typeof shot?.keyframe === "string" && shot.keyframe) return inputFileUrl(shot.keyframe);
  const generated = state.keyframes[shot?.id];
  return generated ? viewUrl(generated) : null;
}

// problems by shot index (from their JSON paths, $.shots[i]...), and the rest
function problemsByShot() {
  const byShot = new Map();
  const other = [];
  for (const problem of state.problems) {
    const match = /^\$\.shots\[(\d+)\]/.exec(problem.where || "");
    const shotId = state.board?.shots?.findIndex?.((s) => s?.id === problem.where);
    const index = match ? Number(match[1]) : shotId >= 0 ? shotId : null;
    if (index === null) other.push(problem);
    else byShot.set(index, [...(byShot.get(index) || []), problem]);
  }
  return { byShot, other };
}

// select the field a problem names: open its shot, then (once the panel is drawn again) focus the input whose JSON
// path is the longest prefix of the problem's
export function selectProblem(problem) {
  const match = /^\$\.shots\[(\d+)\]/.exec(problem.where || "");
  if (match && state.selected !== Number(match[1])) {
    state.selected = Number(match[1]);
    changed("selection");
  }
  setTimeout(() => {
    const fields = [...document.querySelectorAll(".animstudio-panel [data-path]")];
    const best = fields.filter((f) => problem.where.startsWith(f.dataset.path))
      .sort((a, b) => b.dataset.path.length - a.dataset.path.length)[0];
    if (!best) return;
    best.scrollIntoView({ block: "center" });
    best.focus();
    best.classList.add("animstudio-field-problem");
    best.style.outline = "2px solid #e15759";
  }, 0);
}

export function problemList(problems) {
  const list = el("ul", { className: "animstudio-problems" });
  for (const p of problems) {
    const item = el("li", { className: "animstudio-problem", title: "select the field" },
                    el("code", { className: "animstudio-where", textContent: p.where }), ` ${p.message}`);
    item.style.cssText = "cursor:pointer;overflow-wrap:anywhere";
    item.addEventListener("click", (event) => { event.stopPropagation(); selectProblem(p); });
    list.append(item);
  }
  return list;
}

// ---- the cast -------------------------------------------------------------------------------------------------

function castRow(id, character) {
  const name = character?.name || id;
  const reference = Array.isArray(character?.reference_images) ? character.reference_images[0] : null;
  const url = inputFileUrl(reference);
  const picture = url ? el("img", { src: url, alt: name }) : el("div", { textContent: name.slice(0, 1).toUpperCase() });
  picture.style.cssText = "width:36px;height:36px;object-fit:cover;border-radius:50%;background:#555;" +
    "display:flex;align-items:center;justify-content:center;flex:none";
  const voice = character?.voice || {};
  const info = el("span", { textContent: `${name} · ${voice.engine || "espeak"}${voice.name ? ` ${voice.name}` : ""}` });
  info.style.cssText = "flex:1;overflow-wrap:anywhere";
  const play = el("button", { className: "animstudio-voice-preview", textContent: "▶", title: `hear ${name}'s voice` });
  const audio = new Audio();
  play.addEventListener("click", async () => {
    if (!audio.paused) { audio.pause(); return; }
    const theirs = state.board.shots?.flatMap((s) => s?.dialogue || []).find((line) => line?.character === id);
    const text = theirs?.text || `Hello, I am ${name}.`;
    play.disabled = true;
    const answer = await post("tts_preview", { text: text.slice(0, 500), engine: voice.engine || "espeak",
                                               voice: voice.name || null, language: state.board.project?.language || "en" });
    play.disabled = false;
    if (!answer.ok) { info.textContent = `${name}: ${answer.problems?.[0]?.message || answer.error}`; return; }
    audio.src = viewUrl(answer.audio);
    audio.play();
  });
  audio.addEventListener("play", () => { play.textContent = "⏸"; });
  for (const ended of ["pause", "ended"]) audio.addEventListener(ended, () => { play.textContent = "▶"; });
  const row = el("div", { className: "animstudio-cast-member" }, picture, info, play);
  row.dataset.character = id;
  row.style.cssText = "display:flex;gap:6px;align-items:center";
  return row;
}

function cast() {
  const characters = Object.entries(state.board.characters || {});
  const box = el("div", { className: "animstudio-cast" }, el("b", { textContent: `Cast (${characters.length})` }),
                 ...characters.map(([id, c]) => castRow(id, c)));
  box.style.cssText = "display:flex;flex-direction:column;gap:4px";
  return box;
}

// ---- the strip ------------------------------------------------------------------------------------------------

function moveShot(from, to) {
  const shots = state.board.shots;
  if (to < 0 || to >= shots.length || from === to) return;
  const [shot] = shots.splice(from, 1);
  shots.splice(to, 0, shot);
  state.selected = state.selected === from ? to : state.selected;
  changed("board");
}

function newShotId() {
  const taken = new Set(state.board.shots.map((s) => s?.id));
  let n = state.board.shots.length + 1;
  while (taken.has(`shot-${n}`)) n += 1;
  return `shot-${n}`;
}

function filmStretch(shot, index) {
  const timeline = state.film?.timeline || [];
  return timeline.find((t) => t.shot === shot.id) || (timeline.length === state.board.shots.length ? timeline[index] : null);
}

// hover to play: the card's picture gives way to the film, from the shot's start to its end, looped
function hoverPlay(card, picture, shot, index) {
  const stretch = filmStretch(shot, index);
  if (!state.film?.url || !stretch) return;
  let playing = null;
  card.addEventListener("mouseenter", () => {
    const video = el("video", { className: "animstudio-card-video", src: state.film.url, muted: true, playsInline: true });
    video.style.cssText = picture.style.cssText;
    video.addEventListener("loadedmetadata", () => { video.currentTime = stretch.start; video.play().catch(() => {}); });
    video.addEventListener("timeupdate", () => { if (video.currentTime >= stretch.end) video.currentTime = stretch.start; });
    picture.replaceWith(video);
    playing = video;
  });
  card.addEventListener("mouseleave", () => {
    if (!playing) return;
    playing.pause();
    playing.replaceWith(picture);
    playing = null;
  });
}

function card(shot, index, problems) {
  const url = shotPictureUrl(shot);
  const picture = url ? el("img", { className: "animstudio-card-thumb", src: url, alt: `${shot.id}` })
    : el("div", { className: "animstudio-card-thumb", textContent: shot?.description || "" });
  picture.style.cssText = "width:100%;aspect-ratio:16/9;object-fit:cover;background:#333;display:block;" +
    "font-size:10px;overflow:hidden";
  const duration = typeof shot?.duration === "number" ? `${shot.duration} s` : String(shot?.duration ?? "3 s");
  const lines = (shot?.dialogue || []).map((line) =>
    el("div", { className: "animstudio-card-line", textContent: `${line?.character}: ${line?.text ?? ""}` }));
  const tools = el("div", { className: "animstudio-card-tools" });
  const tool = (label, cls, title, action) => {
    const b = el("button", { textContent: label, className: cls, title });
    b.style.cssText = "padding:0 4px;font-size:11px";
    b.addEventListener("click", (event) => { event.stopPropagation(); action(); });
    tools.append(b);
  };
  tool("◀", "animstudio-card-left", "move earlier", () => moveShot(index, index - 1));
  tool("▶", "animstudio-card-right", "move later", () => moveShot(index, index + 1));
  tool("✕", "animstudio-card-remove", "remove the shot", () => {
    state.board.shots.splice(index, 1);
    state.selected = null;
    changed("board");
  });
  const head = el("div", {}, el("b", { textContent: shot?.id ?? `#${index}` }),
                  ` · ${duration} · ${shot?.camera?.move || "static"}`);
  const box = el("div", { className: "animstudio-card", draggable: true }, picture, head, ...lines, tools);
  box.dataset.index = String(index);
  box.dataset.shot = String(shot?.id ?? "");
  const selected = state.selected === index;
  box.style.cssText = `flex:1 1 140px;max-width:260px;padding:4px;border-radius:4px;cursor:pointer;font-size:11px;` +
    `overflow-wrap:anywhere;` +
    `border:2px solid ${problems.length ? "#e15759" : selected ? "#4e79a7" : "#555"}`;
  if (problems.length) box.append(el("div", { className: "animstudio-card-problems" }, problemList(problems)));
  box.addEventListener("click", () => { state.selected = selected ? null : index; changed("selection"); });
  box.addEventListener("dragstart", (event) => event.dataTransfer.setData("text/x-animstudio-shot", String(index)));
  box.addEventListener("dragover", (event) => event.preventDefault());
  box.addEventListener("drop", (event) => {
    event.preventDefault();
    const from = Number(event.dataTransfer.getData("text/x-animstudio-shot"));
    if (Number.isInteger(from)) moveShot(from, index);
  });
  hoverPlay(box, picture, shot, index);
  return box;
}

function playFilm(strip) {
  const video = el("video", { className: "animstudio-film-player", src: state.film.url, controls: true, autoplay: true });
  video.style.cssText = "width:100%";
  video.addEventListener("timeupdate", () => {
    const now = (state.film.timeline || []).findIndex((t) => video.currentTime >= t.start && video.currentTime < t.end);
    for (const c of strip.querySelectorAll(".animstudio-card")) {
      c.style.outline = Number(c.dataset.index) === now ? "2px solid #ffd24d" : "";
    }
  });
  return video;
}

function strip() {
  const { byShot, other } = problemsByShot();
  const shots = Array.isArray(state.board.shots) ? state.board.shots : [];
  const row = el("div", { className: "animstudio-strip" }, ...shots.map((s, i) => card(s, i, byShot.get(i) || [])));
  row.style.cssText = "display:flex;flex-wrap:wrap;gap:6px";
  const add = el("button", { className: "animstudio-add-shot", textContent: "+ shot" });
  add.addEventListener("click", () => {
    state.board.shots = shots;
    shots.push({ id: newShotId(), description: "", duration: 3 });
    state.selected = shots.length - 1;
    changed("board");
  });
  row.append(add);
  const parts = [el("b", { textContent: `Shots (${shots.length})` })];
  if (state.film?.url) {
    const play = el("button", { className: "animstudio-play-film", textContent: "▶ film" });
    const holder = el("div");
    play.addEventListener("click", () => holder.replaceChildren(playFilm(row)));
    parts.push(play, holder);
  }
  if (other.length) parts.push(problemList(other));
  return el("div", { className: "animstudio-shots" }, ...parts, row);
}

// ---- a shot's fields --------------------------------------------------------------------------------------------

function field(label, input, path) {
  input.dataset.path = path;
  input.style.cssText = (input.style.cssText || "") + ";flex:1;min-width:0";
  const row = el("label", { className: "animstudio-field" }, el("span", { textContent: label }), input);
  row.style.cssText = "display:flex;gap:6px;align-items:center";
  row.firstChild.style.cssText = "width:6.5em;flex:none;color:#aaa";
  return row;
}

function text(value, onChange, cls) {
  const input = el("input", { className: cls, value: value ?? "" });
  input.addEventListener("change", () => onChange(input.value));
  return input;
}

function lineRows(shot, index, characters) {
  const rows = (shot.dialogue || []).map((line, j) => {
    const path = `$.shots[${index}].dialogue[${j}]`;
    const who = el("select", { className: "animstudio-line-character" });
    for (const name of new Set([...characters, line.character])) who.append(el("option", { value: name, textContent: name }));
    who.value = line.character;
    who.dataset.path = `${path}.character`;
    who.addEventListener("change", () => { line.character = who.value; changed("board"); });
    const said = text(line.text, (value) => { line.text = value; changed("board"); }, "animstudio-line-text");
    said.dataset.path = `${path}.text`;
    said.style.cssText = "flex:1;min-width:0";
    const remove = el("button", { textContent: "✕", title: "remove the line", className: "animstudio-line-remove" });
    remove.addEventListener("click", () => { shot.dialogue.splice(j, 1); changed("board"); });
    const row = el("div", { className: "animstudio-line" }, who, said, remove);
    row.style.cssText = "display:flex;gap:4px";
    return row;
  });
  const add = el("button", { className: "animstudio-add-line", textContent: "+ line" });
  add.addEventListener("click", () => {
    shot.dialogue = [...(shot.dialogue || []), { character: characters[0] || "", text: "" }];
    changed("board");
  });
  return [...rows, add];
}

export function shotFields(index) {
  const shot = state.board.shots?.[index];
  if (!shot || typeof shot !== "object") return null;
  const at = `$.shots[${index}]`;
  const edit = (key, parse = (v) => v) => (value) => { shot[key] = parse(value); changed("board"); };
  const duration = text(shot.duration ?? 3, edit("duration", (v) => (v.trim() === "fit_to_dialogue" ? v.trim() : Number(v))),
                        "animstudio-shot-duration");
  duration.title = "seconds, or fit_to_dialogue";
  const move = el("select", { className: "animstudio-shot-move" });
  for (const name of CAMERA_MOVES) move.append(el("option", { value: name, textContent: name }));
  move.value = shot.camera?.move || "static";
  move.addEventListener("change", () => { shot.camera = { ...(shot.camera || {}), move: move.value }; changed("board"); });
  const description = el("textarea", { className: "animstudio-shot-description", value: shot.description || "", rows: 2 });
  description.addEventListener("change", () => { shot.description = description.value; changed("board"); });
  const characters = Object.keys(state.board.characters || {});
  const box = el("div", { className: "animstudio-shot-fields" },
    el("b", { textContent: `Shot ${index + 1}: ${shot.id}` }),
    field("id", text(shot.id, edit("id"), "animstudio-shot-id"), `${at}.id`),
    field("description", description, `${at}.description`),
    field("duration", duration, `${at}.duration`),
    field("camera move", move, `${at}.camera`),
    field("panel", text(shot.keyframe ?? "", edit("keyframe", (v) => v.trim() || undefined), "animstudio-shot-keyframe"),
          `${at}.keyframe`),
    el("div", { textContent: "lines" }), ...lineRows(shot, index, characters));
  const picker = mouthPicker(state.board, shot, index, () => changed("board"), shotPictureUrl(shot));
  if (picker) box.append(picker);
  box.style.cssText = "display:flex;flex-direction:column;gap:4px;padding:6px;border:1px solid #4e79a7;border-radius:4px";
  return box;
}

export function renderCards(container) {
  if (!state.board || typeof state.board !== "object") {
    container.replaceChildren(el("div", { textContent: "Open a storyboard from the input folder, or upload one." }));
    return;
  }
  const parts = [cast(), strip()];
  if (state.selected !== null) {
    const fields = shotFields(state.selected);
    if (fields) parts.push(fields);
  }
  container.replaceChildren(...parts);
}

// Mouths placed by a click on a shot's keyframe: under the shot's fields, its picture (a supplied panel or keyframe,
// or the keyframe a run generated for it); a click puts the chosen character's mouth box there (centred on the
// click, of the size in the two boxes: by default a share of the keyframe's width), written into the storyboard as
// $.shots[i].mouths[character]. The mouths the shot has are outlined on the picture. Generated keyframes come back
// the same from the same seed. Imported by storyboard_cards.js.
import { el } from "./util.js";

const MOUTH_WIDTH_SHARE = 0.12;   // default mouth box width, of the keyframe's width
const MOUTH_ASPECT = 0.6;         // default height, of the box's width

export function mouthPicker(board, shot, index, write, url) {
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

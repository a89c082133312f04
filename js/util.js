// Small helpers shared by the pack's editor modules (imported by animstudio.js; no extension registered here).
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

export function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  for (const child of children) node.append(child);
  return node;
}

export function setting(id, fallback) {
  try {
    const value = app.extensionManager?.setting?.get(id);
    return value ?? fallback;
  } catch {
    return fallback;
  }
}

export async function post(route, body) {
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


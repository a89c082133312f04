// Animation Studio's graph-editor extension: a Storyboard sidebar tab (validate, edit shots, build the graph, queue
// the film and show ComfyUI's answer, per-shot progress), settings, a command, a mouth-cue timeline with audio on Lip
// Sync nodes, a camera-move preview on nodes with a camera move (shot nodes show their first frame through core's
// ui.images), and core's audio player on the pack's Load Audio.
// Extension API only; the panel and the node widgets live in their own modules.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

import { onExecuted, onExecuting, onExecutionError, onExecutionSuccess, onProgress, onStatus, renderPanel,
  settleFromHistory } from "./storyboard_panel.js";
import { addAudioPlayerInput, addCameraPreview, addTimeline, AUDIO_PLAYER_NODES, showRunOnWidgets } from "./node_widgets.js";

const TAB_ID = "animstudio-storyboard";

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
    api.addEventListener("execution_error", onExecutionError);
    api.addEventListener("execution_interrupted", onExecutionError);
    api.addEventListener("executed", showRunOnWidgets);
    // the end of a run also when its last messages were lost: execution_success, and the history when the queue
    // empties or the socket comes back
    api.addEventListener("execution_success", onExecutionSuccess);
    api.addEventListener("status", onStatus);
    api.addEventListener("reconnected", settleFromHistory);
  },
  async beforeRegisterNodeDef(_nodeType, nodeData) {
    if (AUDIO_PLAYER_NODES.has(nodeData?.name)) addAudioPlayerInput(nodeData);
  },
  async nodeCreated(node) {
    if (node.comfyClass === "AnimStudioLipSync") addTimeline(node);
    if (node.comfyClass === "AnimStudioShotClip") addCameraPreview(node, "camera_move");
    if (node.comfyClass === "AnimStudioCameraMove") addCameraPreview(node, "move");
  },
});

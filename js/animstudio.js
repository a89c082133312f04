// Animation Studio's graph-editor extension. The storyboard panel arrives with the editor work;
// for now it registers the extension so ComfyUI serves and loads this folder.
import { app } from "../../scripts/app.js";

app.registerExtension({
  name: "animstudio.core",
});

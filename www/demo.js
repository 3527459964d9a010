// The demo page: loads the browser module and shows what the Worker says about itself.
import { fetchHealth, version } from "./pkg/locker_web.js";
import { loadModule } from "./locker-upload.js";

const status = document.getElementById("health");

function show(state, text) {
  status.dataset.state = state;
  status.textContent = text;
}

try {
  await loadModule();
  const health = await fetchHealth(location.origin);
  show(health.status, `Worker ${health.version} is ${health.status} (module ${version()})`);
  const line = (check) => `${check.ok ? "ok" : "failing"}: ${check.detail} (${check.ms} ms)`;
  document.getElementById("health-d1").textContent = line(health.d1);
  document.getElementById("health-r2").textContent = line(health.r2);
  document.getElementById("health-server").textContent = health.server;
  document.getElementById("health-checks").hidden = false;
} catch (error) {
  show("error", `Could not load the health report: ${error.message ?? error}`);
}

// The upload widget's outcome, as a host page would show it.
const outcome = document.getElementById("outcome");
const widget = document.getElementById("uploader");
widget.addEventListener("locker-complete", (e) => {
  const { ref, deduplicated, size } = e.detail;
  outcome.textContent = `${deduplicated ? "Already stored" : "Stored"}: ${ref} (${size} bytes)`;
});
widget.addEventListener("locker-error", (e) => {
  outcome.textContent = `Refused: ${e.detail.error.message}`;
});

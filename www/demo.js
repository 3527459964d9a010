// The demo page: loads the browser module and shows what the Worker says about itself.
import init, { fetchHealth, version } from "./pkg/locker_web.js";

const status = document.getElementById("health");

function show(state, text) {
  status.dataset.state = state;
  status.textContent = text;
}

try {
  await init();
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

// One workload: its facts, "take a snapshot", the timeline of its snapshots (type, size,
// duration, status, live progress) and its restores (live progress, restored instances).
// While anything runs the page polls every second, else every five.

import { api } from "./api.js";
import {
  errorRegion, field, formatBytes, formatDuration, formatTime, h, isRunning, progressBar,
  replaceKeepingFocus, showError, statusBadge,
} from "./dom.js";

const FAST = 1000;
const SLOW = 5000;

function crumbs(name) {
  return h("nav", { class: "crumbs", "aria-label": "Breadcrumb" },
    h("ol", {}, h("li", {}, h("a", { href: "#/workloads" }, "Workloads")), h("li", { "aria-current": "page" }, name)));
}

function facts(workload) {
  const usage = workload.storage_usage || {};
  const rows = [
    ["Status", statusBadge(workload.status)],
    ["Instances", (workload.instances || []).map((i) => `${i.name} (${i.id})`).join(", ") || "–"],
    ["Stored on the backup target", formatBytes(usage.usage ?? 0)],
    ["Created", formatTime(workload.created_at)],
    ["Description", workload.description || "–"],
  ];
  if (workload.error_msg) rows.push(["Error", workload.error_msg]);
  return rows.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]);
}

function snapshotEntry(workloadId, snapshot) {
  const label = snapshot.name || snapshot.id;
  const running = isRunning(snapshot.status);
  const timeTaken = running ? null : snapshot.time_taken;
  return h("li", { class: snapshot.snapshot_type, "aria-labelledby": `snap-${snapshot.id}` },
    h("div", { class: "entry-head" },
      h("h3", { id: `snap-${snapshot.id}` }, label),
      h("span", { class: "kind" }, snapshot.snapshot_type),
      statusBadge(snapshot.status),
      h("span", {}, formatTime(snapshot.created_at))),
    running ? progressBar(`Progress of snapshot ${label}`, snapshot.progress_percent, snapshot.progress_msg) : null,
    h("dl", { class: "facts" },
      h("dt", {}, "Type"), h("dd", {}, snapshot.snapshot_type),
      h("dt", {}, "Size"), h("dd", {}, formatBytes(snapshot.size)),
      h("dt", {}, "Duration"), h("dd", {}, formatDuration(timeTaken)),
      snapshot.error_msg ? [h("dt", {}, "Error"), h("dd", {}, snapshot.error_msg)] : null,
      snapshot.warning_msg ? [h("dt", {}, "Warning"), h("dd", {}, snapshot.warning_msg)] : null),
    snapshot.status === "available"
      ? h("div", { class: "entry-actions" }, h("a", {
        class: "button secondary",
        href: `#/workloads/${encodeURIComponent(workloadId)}/snapshots/${encodeURIComponent(snapshot.id)}/restore`,
        "data-key": `restore-${snapshot.id}`,
        "aria-label": `Restore snapshot ${label}`,
      }, "Restore…"))
      : null);
}

function restoreRows(restores, snapshotNames) {
  if (!restores.length) return [h("tr", {}, h("td", { colspan: "6", class: "empty" }, "No restores yet."))];
  return restores.map((r) => {
    const label = r.name || r.id;
    const running = isRunning(r.status);
    return h("tr", {},
      h("th", { scope: "row" }, label),
      h("td", {}, snapshotNames.get(r.snapshot_id) || r.snapshot_id),
      h("td", {}, r.restore_type),
      h("td", {}, statusBadge(r.status),
        running ? progressBar(`Progress of restore ${label}`, r.progress_percent, r.progress_msg) : null,
        r.error_msg ? h("div", { class: "hint" }, r.error_msg) : null),
      h("td", {}, (r.instances || []).map((i) => i.name).join(", ") || "–"),
      h("td", {}, formatTime(r.created_at), running ? null : ` (${formatDuration(r.time_taken)})`));
  });
}

export async function workloadView(ctx, workloadId) {
  const error = errorRegion();
  const title = h("h1", {}, "Workload");
  const crumbTrail = h("div", {}, crumbs("Workload"));
  const factList = h("dl", { class: "facts" });
  const timeline = h("ol", { class: "timeline", "aria-label": "Snapshots, newest first" });
  const restoresBody = h("tbody", {});
  let workloadName = null;
  const finished = new Map(); // id → status last seen, to announce what ends

  const announceEnds = (items, kind) => {
    for (const item of items) {
      const before = finished.get(item.id);
      if (before && isRunning(before) && !isRunning(item.status)) {
        ctx.announce(`${kind} ${item.name || item.id} is ${item.status}.`);
      }
      finished.set(item.id, item.status);
    }
  };

  const load = async () => {
    try {
      const [{ workload }, { snapshots }, { restores }] = await Promise.all([
        api.get(`/workloads/${encodeURIComponent(workloadId)}`),
        api.get(`/snapshots/detail?workload_id=${encodeURIComponent(workloadId)}`),
        api.get("/restores/detail"),
      ]);
      if (workload.name !== workloadName) {
        workloadName = workload.name;
        title.textContent = `Workload ${workload.name}`;
        document.title = `${title.textContent} – Cairn`;
        crumbTrail.replaceChildren(crumbs(workload.name));
      }
      factList.replaceChildren(...facts(workload));
      const newestFirst = [...snapshots].reverse();
      replaceKeepingFocus(timeline, newestFirst.length
        ? newestFirst.map((s) => snapshotEntry(workloadId, s))
        : [h("li", { class: "empty" }, "No snapshots yet.")]);
      const names = new Map(snapshots.map((s) => [s.id, s.name || s.id]));
      const mine = restores.filter((r) => names.has(r.snapshot_id))
        .sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
      replaceKeepingFocus(restoresBody, restoreRows(mine, names));
      announceEnds(snapshots, "Snapshot");
      announceEnds(mine, "Restore");
      showError(error, null);
      const busy = isRunning(workload.status) || snapshots.some((s) => isRunning(s.status))
        || mine.some((r) => isRunning(r.status));
      return busy ? FAST : SLOW;
    } catch (failure) {
      if (failure.status === 401) ctx.onUnauthorized();
      else showError(error, failure);
      return SLOW;
    }
  };

  const snapError = errorRegion();
  snapError.tabIndex = -1;
  const form = h("form", { "aria-labelledby": "snapshot-heading", novalidate: true },
    field("snapshot-name", "Name", h("input", { type: "text", name: "name", maxlength: "255" }), "Optional."),
    h("fieldset", {},
      h("legend", {}, "Snapshot type"),
      h("div", { class: "choice" }, h("input", { type: "radio", name: "snapshot_type", id: "snapshot-incremental", value: "incremental", checked: true }),
        h("label", { for: "snapshot-incremental" }, "Incremental (only what changed; the first snapshot is always full)")),
      h("div", { class: "choice" }, h("input", { type: "radio", name: "snapshot_type", id: "snapshot-full", value: "full" }),
        h("label", { for: "snapshot-full" }, "Full"))),
    h("button", { type: "submit" }, "Take snapshot"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const snapshot = { snapshot_type: data.get("snapshot_type") };
    if (data.get("name")) snapshot.name = String(data.get("name"));
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    showError(snapError, null);
    try {
      const taken = await api.post(`/workloads/${encodeURIComponent(workloadId)}`, { snapshot });
      ctx.announce(`Snapshot ${taken.snapshot.name || taken.snapshot.id} started.`);
      form.reset();
      await load();
    } catch (failure) {
      if (failure.status === 401) ctx.onUnauthorized();
      showError(snapError, failure);
      snapError.focus();
    } finally {
      button.disabled = false;
    }
  });

  ctx.poll(load, await load());
  return [
    crumbTrail,
    title,
    error,
    factList,
    h("h2", { id: "snapshot-heading" }, "Take a snapshot"),
    snapError,
    form,
    h("h2", { id: "timeline-heading" }, "Snapshots"),
    timeline,
    h("h2", { id: "restores-heading" }, "Restores"),
    h("table", { "aria-labelledby": "restores-heading" },
      h("thead", {}, h("tr", {}, ["Name", "Snapshot", "Type", "Status", "Restored instances", "Started"].map((c) => h("th", { scope: "col" }, c)))),
      restoresBody),
  ];
}

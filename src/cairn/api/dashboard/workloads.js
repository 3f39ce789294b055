// The project's workloads with their status, and the form that creates one.

import { api, currentSession } from "./api.js";
import { errorRegion, field, formatBytes, formatTime, h, isRunning, replaceKeepingFocus, showError, statusBadge } from "./dom.js";

function workloadRows(workloads) {
  if (!workloads.length) {
    return [h("tr", {}, h("td", { colspan: "5", class: "empty" }, "No workloads yet."))];
  }
  return workloads.map((w) => {
    const usage = w.storage_usage || {};
    const full = usage.full?.snap_count ?? 0;
    const incremental = usage.incremental?.snap_count ?? 0;
    return h("tr", {},
      h("th", { scope: "row" }, h("a", { href: `#/workloads/${encodeURIComponent(w.id)}`, "data-key": w.id }, w.name)),
      h("td", {}, statusBadge(w.status), w.error_msg ? h("div", { class: "hint" }, w.error_msg) : null),
      h("td", {}, (w.instances || []).map((i) => i.name).join(", ") || "–"),
      h("td", {}, `${full} full, ${incremental} incremental (${formatBytes(usage.usage ?? 0)})`),
      h("td", {}, formatTime(w.created_at)));
  });
}

export async function workloadsView(ctx) {
  const error = errorRegion();
  const body = h("tbody", {});
  const table = h("table", {},
    h("caption", {}, `Workloads of project ${currentSession().project_id}`),
    h("thead", {}, h("tr", {}, ["Name", "Status", "Instances", "Snapshots", "Created"].map((c) => h("th", { scope: "col" }, c)))),
    body);

  const load = async () => {
    try {
      const { workloads } = await api.get("/workloads/detail");
      replaceKeepingFocus(body, workloadRows(workloads));
      showError(error, null);
      return workloads.some((w) => isRunning(w.status)) ? 1000 : 5000;
    } catch (failure) {
      if (failure.status === 401) ctx.onUnauthorized();
      else showError(error, failure);
      return 5000;
    }
  };
  ctx.poll(load, await load());

  const createError = errorRegion();
  createError.tabIndex = -1;
  const types = h("select", { name: "workload_type_id" });
  const policies = h("select", { name: "policy_id" }, h("option", { value: "" }, "None"));
  try {
    const [{ workload_types: known }, assigned] = await Promise.all([
      api.get("/workload_types/detail"),
      api.get(`/workload_policy/assigned/${encodeURIComponent(currentSession().project_id)}`).catch(() => ({ policies: [] })),
    ]);
    for (const type of known) types.append(h("option", { value: type.id }, `${type.name} – ${type.description}`));
    for (const policy of assigned.policies || []) policies.append(h("option", { value: policy.policy_id }, policy.policy_name));
  } catch (failure) {
    showError(createError, failure);
  }
  const form = h("form", { "aria-labelledby": "create-heading", novalidate: true },
    field("create-name", "Name", h("input", { type: "text", name: "name", required: true, maxlength: "255" })),
    field("create-description", "Description", h("input", { type: "text", name: "description" })),
    field("create-instances", "Instance ids", h("textarea", { name: "instances", rows: "3", required: true }),
      "One instance id per line (or separated by spaces or commas)."),
    field("create-type", "Workload type", types),
    policies.options.length > 1 ? field("create-policy", "Policy", policies, "A workload policy assigned to this project.") : null,
    h("button", { type: "submit" }, "Create workload"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const instances = String(data.get("instances") || "").split(/[\s,]+/).filter(Boolean)
      .map((id) => ({ "instance-id": id }));
    const workload = {
      name: String(data.get("name") || ""),
      description: String(data.get("description") || ""),
      workload_type_id: data.get("workload_type_id") || undefined,
      instances,
    };
    if (data.get("policy_id")) workload.metadata = { policy_id: data.get("policy_id") };
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    showError(createError, null);
    try {
      const created = await api.post("/workloads", { workload });
      ctx.announce(`Workload ${created.workload.name} is being created.`);
      ctx.navigate(`#/workloads/${encodeURIComponent(created.workload.id)}`);
    } catch (failure) {
      if (failure.status === 401) ctx.onUnauthorized();
      showError(createError, failure);
      createError.focus();
    } finally {
      button.disabled = false;
    }
  });
  return [
    h("h1", {}, "Workloads"),
    error,
    table,
    h("h2", { id: "create-heading" }, "Create a workload"),
    createError,
    form,
  ];
}

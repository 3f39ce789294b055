// The restore form of one snapshot: one-click (every instance as a new one beside the
// original) or selective (the instances chosen, under the names given).

import { api } from "./api.js";
import { errorRegion, field, formatBytes, formatTime, h, showError } from "./dom.js";

function instanceChoice(instance, index) {
  const include = h("input", { type: "checkbox", name: `include-${index}`, id: `include-${index}`, checked: true, "data-instance": instance.id });
  const name = h("input", { type: "text", name: `name-${index}`, placeholder: instance.name, maxlength: "255" });
  return h("div", { class: "instance-choice" },
    h("div", { class: "choice" }, include, h("label", { for: `include-${index}` }, `Restore ${instance.name}`)),
    field(`name-${index}`, `New name for ${instance.name}`, name, "Empty: the original name."));
}

export async function restoreView(ctx, workloadId, snapshotId) {
  const error = errorRegion();
  error.tabIndex = -1;
  const back = `#/workloads/${encodeURIComponent(workloadId)}`;
  let snapshot;
  let workload;
  try {
    [{ snapshot }, { workload }] = await Promise.all([
      api.get(`/workloads/${encodeURIComponent(workloadId)}/snapshots/${encodeURIComponent(snapshotId)}`),
      api.get(`/workloads/${encodeURIComponent(workloadId)}`),
    ]);
  } catch (failure) {
    if (failure.status === 401) ctx.onUnauthorized();
    showError(error, failure);
    return [h("h1", {}, "Restore a snapshot"), error, h("p", {}, h("a", { href: back }, "Back to the workload"))];
  }
  const label = snapshot.name || snapshot.id;
  const instances = snapshot.instances || [];
  const choices = h("fieldset", { disabled: true },
    h("legend", {}, "Instances to restore"),
    instances.map(instanceChoice));
  const typeChoice = (value, text) => h("div", { class: "choice" },
    h("input", { type: "radio", name: "restore_type", id: `restore-${value}`, value, checked: value === "oneclick" }),
    h("label", { for: `restore-${value}` }, text));
  const form = h("form", { "aria-labelledby": "restore-heading", novalidate: true },
    field("restore-name", "Restore name", h("input", { type: "text", name: "name", maxlength: "255", value: `Restore of ${label}` })),
    field("restore-description", "Description", h("input", { type: "text", name: "description" })),
    h("fieldset", {},
      h("legend", {}, "Restore type"),
      typeChoice("oneclick", "One-click: every instance comes back as a new instance beside the original"),
      typeChoice("selective", "Selective: only the instances chosen, under the names given")),
    choices,
    h("button", { type: "submit" }, "Start restore"),
    " ",
    h("a", { href: back, class: "button secondary" }, "Cancel"));
  form.addEventListener("change", (event) => {
    if (event.target.name === "restore_type") choices.disabled = form.elements.restore_type.value !== "selective";
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const restoreType = data.get("restore_type");
    const options = { type: "openstack", restore_type: restoreType, oneclickrestore: restoreType === "oneclick" };
    if (restoreType === "selective") {
      options.openstack = {
        instances: instances.map((instance, index) => {
          const choice = { id: instance.id, include: data.get(`include-${index}`) === "on" };
          const name = String(data.get(`name-${index}`) || "").trim();
          if (name) choice.name = name;
          return choice;
        }),
      };
    }
    const restore = { name: String(data.get("name") || ""), description: String(data.get("description") || ""), options };
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    showError(error, null);
    try {
      const started = await api.post(`/workloads/${encodeURIComponent(workloadId)}/snapshots/${encodeURIComponent(snapshotId)}/restores`, { restore });
      ctx.announce(`Restore ${started.restore.name} started.`);
      ctx.navigate(back);
    } catch (failure) {
      if (failure.status === 401) ctx.onUnauthorized();
      showError(error, failure);
      error.focus();
    } finally {
      button.disabled = false;
    }
  });
  return [
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("ol", {},
      h("li", {}, h("a", { href: "#/workloads" }, "Workloads")),
      h("li", {}, h("a", { href: back }, workload.name)),
      h("li", { "aria-current": "page" }, "Restore"))),
    h("h1", { id: "restore-heading" }, `Restore snapshot ${label}`),
    h("p", {}, `Taken ${formatTime(snapshot.created_at)}, ${snapshot.snapshot_type}, ${formatBytes(snapshot.restore_size)} to write.`),
    error,
    form,
  ];
}

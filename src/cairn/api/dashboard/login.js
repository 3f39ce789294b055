// The login page: a Keystone user name and password (auth_strategy = keystone), or a
// token (`cairn token create`, or a Keystone token), checked by POST /dashboard/login.

import { request, saveSession } from "./api.js";
import { errorRegion, field, h, showError } from "./dom.js";

async function logIn(ctx, form, error, body) {
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  showError(error, null);
  try {
    const answer = await request("POST", "/dashboard/login", { login: body });
    saveSession(answer.login);
    ctx.navigate("#/workloads");
  } catch (failure) {
    showError(error, failure);
    error.focus();
  } finally {
    button.disabled = false;
  }
}

export async function loginView(ctx) {
  const error = errorRegion();
  error.tabIndex = -1;
  const reason = sessionStorage.getItem("cairn.dashboard.reason");
  sessionStorage.removeItem("cairn.dashboard.reason");
  if (reason) showError(error, { message: reason });
  let methods = ["token"];
  let strategy = "local";
  try {
    const answer = await request("GET", "/dashboard/login");
    methods = answer.login.methods;
    strategy = answer.login.auth_strategy;
  } catch (failure) {
    showError(error, failure);
  }
  const forms = [];
  if (methods.includes("password")) {
    const form = h("form", { "aria-labelledby": "keystone-heading", novalidate: true },
      h("h2", { id: "keystone-heading" }, "As a Keystone user"),
      field("login-username", "User name", h("input", { type: "text", name: "username", autocomplete: "username", required: true })),
      field("login-password", "Password", h("input", { type: "password", name: "password", autocomplete: "current-password", required: true })),
      field("login-project", "Project", h("input", { type: "text", name: "project_name", required: true }),
        "The name of the project whose workloads you manage."),
      field("login-user-domain", "User domain", h("input", { type: "text", name: "user_domain_name", value: "Default" })),
      field("login-project-domain", "Project domain", h("input", { type: "text", name: "project_domain_name", value: "Default" })),
      h("button", { type: "submit" }, "Log in"));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const data = new FormData(form);
      logIn(ctx, form, error, {
        method: "password",
        username: data.get("username") || null,
        password: data.get("password") || null,
        project_name: data.get("project_name") || null,
        user_domain_name: data.get("user_domain_name") || "Default",
        project_domain_name: data.get("project_domain_name") || "Default",
      });
    });
    forms.push(form);
  }
  const hint = strategy === "keystone"
    ? "A project-scoped Keystone token (openstack token issue)."
    : "A token from `cairn token create --project PROJECT --user USER`.";
  const tokenForm = h("form", { "aria-labelledby": "token-heading", novalidate: true },
    h("h2", { id: "token-heading" }, "With a token"),
    field("login-token", "Token", h("input", { type: "password", name: "token", autocomplete: "off", required: true }), hint),
    h("button", { type: "submit" }, "Log in with token"));
  tokenForm.addEventListener("submit", (event) => {
    event.preventDefault();
    logIn(ctx, tokenForm, error, { method: "token", token: new FormData(tokenForm).get("token") || null });
  });
  forms.push(tokenForm);
  return [h("h1", {}, "Log in to Cairn"), error, h("div", { class: "login-forms" }, forms)];
}

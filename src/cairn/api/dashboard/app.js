// The dashboard's router: one view per location hash, a poller per view, focus moved to
// the new page's heading on every navigation.
//
//   #/login                                   log in (Keystone user or token)
//   #/workloads                               the project's workloads, create one
//   #/workloads/<id>                          a workload: snapshot timeline, restores
//   #/workloads/<id>/snapshots/<sid>/restore  the restore form of a snapshot

import { clearSession, currentSession } from "./api.js";
import { loginView } from "./login.js";
import { restoreView } from "./restore.js";
import { workloadView } from "./workload.js";
import { workloadsView } from "./workloads.js";

const main = document.getElementById("main");
const announcer = document.getElementById("announce");
let stopCurrent = () => {};
// the first page is left for the reader to start at its top; later ones take the focus
let navigated = false;

// Things a view may do beyond drawing itself.
function context() {
  const stops = [];
  return {
    // call `refresh` again `ms` after each call ends (it may return another delay)
    poll(refresh, ms) {
      let stopped = false;
      let timer;
      const tick = async () => {
        let next = ms;
        try {
          next = (await refresh()) || ms;
        } catch {
          // the view shows its own errors; polling goes on
        }
        if (!stopped) timer = setTimeout(tick, next);
      };
      timer = setTimeout(tick, ms);
      stops.push(() => {
        stopped = true;
        clearTimeout(timer);
      });
    },
    stop() {
      for (const stop of stops.splice(0)) stop();
    },
    navigate(hash) {
      if (location.hash === hash) route();
      else location.hash = hash;
    },
    announce(text) {
      announcer.textContent = "";
      // a fresh text node so the same words are announced twice
      setTimeout(() => { announcer.textContent = text; }, 50);
    },
    onUnauthorized() {
      clearSession();
      sessionStorage.setItem("cairn.dashboard.reason", "Your session has ended; log in again.");
      this.navigate("#/login");
    },
  };
}

function showWho() {
  const session = currentSession();
  const who = document.getElementById("who");
  const logout = document.getElementById("logout");
  who.textContent = session ? `Project ${session.project_id} · user ${session.user_id}` : "";
  logout.hidden = !session;
}

async function route() {
  stopCurrent();
  const ctx = context();
  stopCurrent = () => ctx.stop();
  showWho();
  const hash = location.hash || "#/workloads";
  const session = currentSession();
  let view;
  let match;
  if (hash === "#/login" || !session) {
    if (hash !== "#/login") {
      location.replace("#/login");
      return;
    }
    view = () => loginView(ctx);
  } else if ((match = hash.match(/^#\/workloads\/([^/]+)\/snapshots\/([^/]+)\/restore$/))) {
    view = () => restoreView(ctx, decodeURIComponent(match[1]), decodeURIComponent(match[2]));
  } else if ((match = hash.match(/^#\/workloads\/([^/]+)$/))) {
    view = () => workloadView(ctx, decodeURIComponent(match[1]));
  } else {
    view = () => workloadsView(ctx);
  }
  const page = await view();
  main.replaceChildren(...page);
  const heading = main.querySelector("h1");
  document.title = heading ? `${heading.textContent} – Cairn` : "Cairn dashboard";
  if (heading) {
    heading.tabIndex = -1;
    if (navigated) heading.focus();
  }
  navigated = true;
  showWho();
}

// the skip link moves the focus itself: its #main would be taken for a route
document.querySelector(".skip").addEventListener("click", (event) => {
  event.preventDefault();
  (main.querySelector("h1") || main).focus();
});
document.getElementById("logout").addEventListener("click", () => {
  clearSession();
  location.hash = "#/login";
});
window.addEventListener("hashchange", route);
route();

// The backstage's few behaviours; every page also works as plain forms and links.
"use strict";

// Whether a form field differs from what the page was rendered with.
function changed(field) {
  if (field.tagName === "SELECT") {
    const options = Array.from(field.options);
    // With no option marked, a single choice starts at its first option.
    const marked = options.some(option => option.defaultSelected);
    return options.some((option, i) => option.selected !== (marked ? option.defaultSelected : !field.multiple && i === 0));
  }
  if (field.type === "checkbox" || field.type === "radio") return field.checked !== field.defaultChecked;
  return field.value !== field.defaultValue;
}

// Whether someone is in the middle of a form in `region`: typing, or a choice not yet sent.
function editing(region) {
  const active = document.activeElement;
  if (active && region.contains(active) && active.matches("input, textarea, select")) return true;
  return Array.from(region.querySelectorAll("input:not([type=hidden]), textarea, select")).some(changed);
}

// Live incident page: ask every 2 s whether the incident changed (204: no), and swap in the
// changed part, unless someone is filling in a form there (then it waits until they are not).
// Nothing is asked while the page is hidden, so an idle tab costs nothing.
function startLive(region) {
  const url = region.dataset.liveUrl;
  let digest = region.dataset.digest;
  let timer = null;
  let busy = false;
  async function poll() {
    if (busy || document.hidden || editing(region)) return;
    busy = true;
    try {
      const response = await fetch(url + (url.includes("?") ? "&" : "?") + "digest=" + encodeURIComponent(digest), {
        credentials: "same-origin", headers: { "Accept": "text/html" }, cache: "no-store",
      });
      if (response.redirected || response.status === 401) {
        stop();  // signed out meanwhile: the next click goes to the sign-in page
      } else if (response.status === 200) {
        const html = await response.text();
        // Keep keyboard focus where it was when the same control is still there.
        const focused = document.activeElement && region.contains(document.activeElement) ? document.activeElement : null;
        const key = focused ? focused.id || (focused.form && focused.form.closest("[id]") && focused.form.closest("[id]").id) : null;
        const open = Array.from(region.querySelectorAll("details[id]")).filter(d => d.open).map(d => d.id);
        region.innerHTML = html;
        const said = document.getElementById("live-status");
        if (said) said.textContent = "The incident changed; the page shows it as of " + new Date().toLocaleTimeString() + ".";
        digest = response.headers.get("X-Digest") || digest;
        region.dataset.digest = digest;
        open.forEach(id => { const d = document.getElementById(id); if (d) d.open = true; });
        if (key) { const again = document.getElementById(key); if (again) (again.querySelector("button") || again).focus(); }
      }
    } catch (_) {
      // Offline for a moment: the next tick tries again.
    } finally {
      busy = false;
    }
  }
  function start() { if (!timer) timer = setInterval(poll, 2000); }
  function stop() { if (timer) { clearInterval(timer); timer = null; } }
  document.addEventListener("visibilitychange", () => { if (document.hidden) stop(); else { poll(); start(); } });
  window.addEventListener("pagehide", stop);
  start();
}

// Playbook editor: removing a stage or an item is immediate and undoable until saved (the
// form's own checkbox, which a plain form posts, says it is removed); stages and items are
// added from <template>s, numbered after the last one.
function startEditor() {
  const stages = document.getElementById("stages");
  function removal(toggle) {
    const part = toggle.closest("[data-removable]");
    part.classList.add("removable");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "remove-now";
    button.textContent = part.dataset.removable === "stage" ? "Remove stage" : "Remove item";
    const undone = document.createElement("p");
    undone.className = "undo";
    undone.hidden = true;
    const undo = document.createElement("button");
    undo.type = "button";
    undo.textContent = "Undo";
    undone.append(document.createElement("span"), " ", undo);
    toggle.closest("label").replaceWith(button, undone, toggle);
    toggle.hidden = true;
    function show(removed) {
      toggle.checked = removed;
      part.classList.toggle("removed", removed);
      undone.hidden = !removed;
      button.hidden = removed;
      const title = part.querySelector("input[name$='.title']");
      undone.firstChild.textContent = `${part.dataset.name} ${title && title.value ? "“" + title.value + "” " : ""}will be removed when you save.`;
      (removed ? undo : button).focus();
    }
    button.addEventListener("click", () => show(true));
    undo.addEventListener("click", () => show(false));
    if (toggle.checked) show(true);
  }
  function enhance(root) { root.querySelectorAll("input.remove-toggle").forEach(removal); }
  enhance(stages);
  function addItem(stageIndex) {
    const fieldset = stages.querySelector(`fieldset[data-stage="${stageIndex}"]`);
    const list = fieldset.querySelector("ol.edit-items");
    const next = Number(list.dataset.next || list.children.length);
    list.dataset.next = String(next + 1);
    const html = document.getElementById("item-template").innerHTML.replaceAll("__S__", stageIndex).replaceAll("__I__", next);
    list.insertAdjacentHTML("beforeend", html);
    list.lastElementChild.dataset.name = `Stage ${Number(stageIndex) + 1}, item ${list.children.length}`;
    enhance(list.lastElementChild);
    list.lastElementChild.querySelector("input").focus();
  }
  document.addEventListener("click", event => {
    const button = event.target.closest("button.add-item");
    if (button) { event.preventDefault(); addItem(button.dataset.stage); }
  });
  document.getElementById("add-stage").addEventListener("click", () => {
    const next = Number(stages.dataset.next || 0);
    stages.dataset.next = String(next + 1);
    const html = document.getElementById("stage-template").innerHTML.replaceAll("__S__", next);
    stages.insertAdjacentHTML("beforeend", html);
    stages.lastElementChild.querySelector("legend").textContent = "Stage " + (stages.children.length);
    stages.lastElementChild.dataset.name = "Stage " + (stages.children.length);
    enhance(stages.lastElementChild);
    stages.lastElementChild.querySelector("input").focus();
  });
}

// Charts of the statistics dashboard (Chart.js, served by this app).
function startCharts() {
  const data = JSON.parse(document.getElementById("chart-data").textContent);
  const common = { responsive: true, maintainAspectRatio: false, animation: false };
  // A chart with nothing to show is a sentence instead (no canvas).
  const make = (id, config) => {
    const canvas = document.getElementById(id);
    if (canvas) new Chart(canvas, { ...config, options: { ...common, ...(config.options || {}) } });
  };
  make("chart-started", { type: "bar", data: { labels: data.days, datasets: [{ label: "Started", data: data.started, backgroundColor: "#0b5cad" }] },
    options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } } });
  make("chart-ttr", { type: "line", data: { labels: data.days, datasets: [
      { label: "Median", data: data.ttr_median_minutes, borderColor: "#1a7f37", backgroundColor: "#1a7f37", spanGaps: true },
      { label: "p90", data: data.ttr_p90_minutes, borderColor: "#b42318", backgroundColor: "#b42318", spanGaps: true }] },
    options: { scales: { y: { beginAtZero: true, title: { display: true, text: "minutes" } } } } });
  make("chart-first-update", { type: "bar", data: { labels: data.first_update_labels, datasets: [{ label: "Incidents", data: data.first_update_counts, backgroundColor: "#9a6700" }] },
    options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } } });
  make("chart-status", { type: "doughnut", data: { labels: data.status_labels, datasets: [{ data: data.status_counts, backgroundColor: ["#953800", "#1a7f37"] }] } });
  document.body.dataset.chartsReady = "true";
}

// Copy buttons: each copies the text of the element its data-copy names (a URL, a token
// shown once). Shown only with script; without it the value is plain text to select. Where
// the clipboard is not available (a page not served over https), the value is selected
// for the person to copy themselves.
function startCopy(button) {
  const source = document.getElementById(button.dataset.copy);
  if (!source) return;
  const said = document.getElementById("copy-status");
  button.hidden = false;
  button.addEventListener("click", async () => {
    const value = source.textContent.trim();
    let copied = false;
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(value);
        copied = true;
      }
    } catch (_) {
      copied = false;
    }
    if (!copied) {
      const range = document.createRange();
      range.selectNodeContents(source);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      try { copied = document.execCommand("copy"); } catch (_) { copied = false; }
    }
    if (said) said.textContent = copied ? "Copied." : "Selected: press Ctrl+C (or ⌘C) to copy.";
    if (copied) {
      button.dataset.copied = "true";
      setTimeout(() => { delete button.dataset.copied; }, 2000);
    }
  });
}

// Retrospective: the preview follows the text, rendered by the server (which shows people's
// HTML as text), asked for once typing pauses; the latest answer wins.
function startPreview(area) {
  const preview = document.getElementById("retro-preview");
  let timer = null;
  let asked = 0;
  async function refresh() {
    const mine = ++asked;
    const body = new URLSearchParams({ csrf_token: area.dataset.csrf, text: area.value });
    try {
      const response = await fetch(area.dataset.previewUrl, { method: "POST", body, credentials: "same-origin", cache: "no-store" });
      if (response.ok && mine === asked) preview.innerHTML = await response.text();
    } catch (_) {
      // Offline for a moment: the next change tries again.
    }
  }
  area.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(refresh, 300); });
}

document.addEventListener("DOMContentLoaded", () => {
  const live = document.getElementById("live");
  if (live) startLive(live);
  if (document.getElementById("stages")) startEditor();
  const retrospective = document.getElementById("retro-text");
  if (retrospective && retrospective.dataset.previewUrl) startPreview(retrospective);
  if (document.getElementById("chart-data") && window.Chart) startCharts();
  document.querySelectorAll("button.copy[data-copy]").forEach(startCopy);
  document.querySelectorAll("form[data-confirm]").forEach(form => form.addEventListener("submit", event => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  }));
  // A slider showing the incident at a moment: the moment shows as soon as the slider is let go.
  document.querySelectorAll("form[data-autosubmit] input[type=range]").forEach(range => {
    const chosen = document.getElementById(range.getAttribute("aria-describedby"));
    const started = Date.parse(range.dataset.started || "");
    range.addEventListener("input", () => {
      if (chosen && !Number.isNaN(started)) {
        chosen.textContent = new Date(started + Number(range.value) * 1000).toISOString().slice(0, 19).replace("T", " ") + " UTC";
      }
    });
    range.addEventListener("change", () => range.form.requestSubmit());
  });
  // A notice can be put away once read.
  document.querySelectorAll(".flash").forEach(flash => {
    const close = document.createElement("button");
    close.type = "button";
    close.className = "link dismiss";
    close.textContent = "Dismiss";
    close.addEventListener("click", () => flash.remove());
    flash.append(" ", close);
  });
  // Choosing a preset window forgets the days typed for a window of one's own.
  const preset = document.getElementById("s-days");
  if (preset) preset.addEventListener("change", () => {
    if (preset.value !== "0") ["s-since", "s-until"].forEach(id => { document.getElementById(id).value = ""; });
  });
  // After a refused form, focus goes to what to fix.
  const summary = document.getElementById("error-summary");
  const refused = document.querySelector(".form-error");
  const secret = document.getElementById("secret");
  if (summary) summary.focus();
  else if (secret) secret.focus();  // a token shown once: read first
  else if (refused) (refused.closest("form").querySelector("[aria-invalid=true]") || refused.closest("form").querySelector("input:not([type=hidden]), textarea, select, button")).focus();
});

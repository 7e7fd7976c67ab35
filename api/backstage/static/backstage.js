// The backstage's few behaviours; every page also works as plain forms and links.
"use strict";

// Live incident page: ask every 2 s whether the incident changed (204: no), and swap in the
// changed part. Nothing is asked while the page is hidden, so an idle tab costs nothing.
function startLive(region) {
  const url = region.dataset.liveUrl;
  let digest = region.dataset.digest;
  let timer = null;
  let busy = false;
  async function poll() {
    if (busy || document.hidden) return;
    busy = true;
    try {
      const response = await fetch(url + "?digest=" + encodeURIComponent(digest), {
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

// Playbook editor: add stages and items from <template>s, numbered after the last one.
function startEditor() {
  const stages = document.getElementById("stages");
  function addItem(stageIndex) {
    const fieldset = stages.querySelector(`fieldset[data-stage="${stageIndex}"]`);
    const list = fieldset.querySelector("ol.edit-items");
    const next = Number(list.dataset.next || list.children.length);
    list.dataset.next = String(next + 1);
    const html = document.getElementById("item-template").innerHTML.replaceAll("__S__", stageIndex).replaceAll("__I__", next);
    list.insertAdjacentHTML("beforeend", html);
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
    stages.lastElementChild.querySelector("input").focus();
  });
}

// Charts of the statistics dashboard (Chart.js, served by this app).
function startCharts() {
  const data = JSON.parse(document.getElementById("chart-data").textContent);
  const common = { responsive: true, maintainAspectRatio: false, animation: false };
  const make = (id, config) => new Chart(document.getElementById(id), { ...config, options: { ...common, ...(config.options || {}) } });
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

document.addEventListener("DOMContentLoaded", () => {
  const live = document.getElementById("live");
  if (live) startLive(live);
  if (document.getElementById("stages")) startEditor();
  if (document.getElementById("chart-data") && window.Chart) startCharts();
  document.querySelectorAll("form[data-confirm]").forEach(form => form.addEventListener("submit", event => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  }));
  // On a phone the filters start folded, so the list is what one sees first.
  const filters = document.querySelector("details.filter-box");
  if (filters && window.matchMedia("(max-width: 640px)").matches && !location.search) filters.open = false;
  // Choosing a preset window forgets the days typed for a window of one's own.
  const preset = document.getElementById("s-days");
  if (preset) preset.addEventListener("change", () => {
    if (preset.value !== "0") ["s-since", "s-until"].forEach(id => { document.getElementById(id).value = ""; });
  });
  const summary = document.getElementById("error-summary");
  if (summary) summary.focus();
});

// The console works without this script; it only keeps what you look at up to date:
// the runs table refreshes itself, and a run's page that is not over shows its state
// as it changes and streams its log lines, then reloads once the run has ended.
// Text from runs is only ever set as text, never as markup.
"use strict";

const ENDED = new Set(["succeeded", "failed", "timed_out", "dead_letter", "cancelled"]);

// Control characters (ANSI colour codes and the like) as their Unicode pictures, as the server shows them.
function visible(text) {
  return text.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, (c) => String.fromCharCode(c === "\x7f" ? 0x2421 : 0x2400 + c.charCodeAt(0)));
}

function refreshTable(table) {
  const seconds = Number(table.dataset.refresh);
  if (!seconds) return;
  setInterval(async () => {
    if (document.hidden) return;
    const answer = await fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (!answer.ok) return;
    const fresh = new DOMParser().parseFromString(await answer.text(), "text/html").querySelector("table.runs tbody");
    const current = table.querySelector("tbody");
    if (fresh && current) current.replaceWith(document.adoptNode(fresh));
  }, seconds * 1000);
}

async function followLogs(pre) {
  const answer = await fetch(pre.dataset.follow, { credentials: "same-origin" });
  if (!answer.ok || !answer.body) return;
  const reader = answer.body.getReader();
  const decoder = new TextDecoder();
  let first = true;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    if (first) { pre.textContent = ""; first = false; }
    pre.textContent += visible(decoder.decode(value, { stream: true }));
    pre.scrollTop = pre.scrollHeight;
  }
}

function watchRun(badge) {
  const timer = setInterval(async () => {
    const answer = await fetch(badge.dataset.watch, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!answer.ok) return;
    const run = await answer.json();
    badge.textContent = run.state;
    badge.className = `state state-${run.state}`;
    if (ENDED.has(run.state)) {
      clearInterval(timer);
      setTimeout(() => location.reload(), 500); // its outcome, timeline, attempts and result
    }
  }, 1000);
}

function refreshPage(element) {
  const seconds = Number(element.dataset.refreshPage);
  if (seconds) setInterval(() => { if (!document.hidden) location.reload(); }, seconds * 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-refresh-page]").forEach(refreshPage);
  document.querySelectorAll("table[data-refresh]").forEach(refreshTable);
  document.querySelectorAll("pre[data-follow]").forEach(followLogs);
  document.querySelectorAll("[data-watch]").forEach(watchRun);
});

// Keyboard shortcuts for the queue and the workbench: j/k move, Enter opens, letters submit the row's forms.
(function () {
  const items = Array.from(document.querySelectorAll(".item"));
  if (!items.length) return;
  let index = Math.max(0, items.findIndex((el) => el.classList.contains("selected")));
  function select(i) {
    items[index].classList.remove("selected");
    index = Math.min(items.length - 1, Math.max(0, i));
    items[index].classList.add("selected");
    items[index].scrollIntoView({ block: "nearest" });
  }
  items.forEach((el, i) => el.addEventListener("click", () => select(i)));
  document.addEventListener("keydown", (event) => {
    const tag = (event.target.tagName || "").toLowerCase();
    if (["input", "textarea", "select"].includes(tag) || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "j") { select(index + 1); event.preventDefault(); return; }
    if (event.key === "k") { select(index - 1); event.preventDefault(); return; }
    if (event.key === "Enter") {
      const link = items[index].querySelector("a.tid");
      if (link) { window.location.href = link.href; event.preventDefault(); }
      return;
    }
    const form = items[index].querySelector(`form[data-key="${event.key}"]`);
    if (!form) return;
    event.preventDefault();
    const field = form.querySelector("select, input:not([type=hidden])");
    if (field) { field.focus(); return; }  // needs input first (reroute, merge, cancel): focus it
    form.requestSubmit();
  });
})();

// The queue keeps itself current: every few seconds it asks which tickets are in it now. New arrivals are counted
// in a banner; the page reloads by itself only when the dispatcher is idle and has typed nothing into it.
(function () {
  const live = document.getElementById("queue-live");
  if (!live) return;
  const shown = new Set(live.dataset.ids ? live.dataset.ids.split(",") : []);
  const text = live.querySelector(".live-text");
  const seconds = Math.max(2, Number(live.dataset.interval) || 15);
  let lastActivity = Date.now();
  ["keydown", "mousedown", "input", "touchstart"].forEach((name) =>
    document.addEventListener(name, () => { lastActivity = Date.now(); }, { passive: true }));
  live.querySelector(".live-reload").addEventListener("click", () => window.location.reload());
  function typed() {
    return Array.from(document.querySelectorAll("main form:not(.filters) input:not([type=hidden]), main textarea"))
      .some((el) => el.value && el.value !== el.defaultValue);
  }
  function show(message) { text.textContent = message; live.hidden = false; }
  async function poll() {
    let answer;
    try {
      answer = await fetch(live.dataset.summary, { credentials: "same-origin", headers: { Accept: "application/json" } });
    } catch (e) { return; }  // offline for a moment: ask again next time
    if (answer.status === 401) {
      show("会话已过期，请重新登录（刷新后将回到本页）");
      clearInterval(timer);
      return;
    }
    if (!answer.ok) return;
    const data = await answer.json();
    const now = new Set(data.ids.map(String));
    const added = data.ids.map(String).filter((id) => !shown.has(id)).length;
    const gone = Array.from(shown).filter((id) => !now.has(id)).length;
    document.getElementById("queue-count").textContent = `${data.count} 件`;
    if (!added && !gone) { live.hidden = true; return; }
    const parts = [];
    if (added) parts.push(`新到 ${added} 件工单`);
    if (gone) parts.push(`${gone} 件已由他人处理`);
    show(`队列有变化：${parts.join("，")}。`);
    if (added) document.title = `(${added}) 派单审核队列 · 12345 工单处置`;
    const busy = ["input", "select", "textarea"].includes((document.activeElement.tagName || "").toLowerCase());
    if (Date.now() - lastActivity > 60000 && !typed() && !busy) {
      window.location.reload();
    }
  }
  const timer = setInterval(poll, seconds * 1000);
})();

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

/* The duplicate compare screen by keys: S same photo, D not the same, N next group, 1-9 the image to keep. */
(function () {
  "use strict";
  const root = document.getElementById("compare");
  if (!root) return;
  const keepField = document.getElementById("keep-field");
  const figures = Array.from(root.querySelectorAll(".compare-image"));
  let busy = false;

  function mark(figure) {
    for (const other of figures) {
      other.removeAttribute("aria-current");
      other.querySelector(".keep-mark").hidden = true;
    }
    figure.setAttribute("aria-current", "true");
    figure.querySelector(".keep-mark").hidden = false;
    keepField.value = figure.dataset.image;
    root.dataset.keep = figure.dataset.image;
  }

  function submit(form) {
    if (busy) return;
    busy = true;
    root.dataset.state = "saving";
    form.submit();
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    if (event.target instanceof HTMLInputElement || event.target instanceof HTMLTextAreaElement) return;
    const key = event.key.toLowerCase();
    if (key === "s") submit(document.getElementById("same-form"));
    else if (key === "d") submit(document.getElementById("different-form"));
    else if (key === "n") window.location.assign(root.dataset.nextUrl);
    else if (/^[1-9]$/.test(key)) {
      const figure = figures.find((f) => f.dataset.number === key);
      if (figure) mark(figure);
    } else return;
    event.preventDefault();
  });
  for (const figure of figures) figure.addEventListener("click", () => mark(figure));
  root.dataset.state = "ready";
})();

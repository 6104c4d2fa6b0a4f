/* The adjudication screen: the decision panel fills the hidden form fields and submits it. */
(function () {
  "use strict";
  const form = document.getElementById("adjudication-form");
  const viewerElement = document.getElementById("viewer");
  const viewer = new ImageViewer(viewerElement, document.getElementById("current-image"));
  const note = document.getElementById("field-note");
  let sent = false;
  const panel = new DecisionPanel(document.getElementById("decide"), (decision) => {
    if (sent) return;  // one decision per page: a second key press must not post another
    sent = true;
    document.getElementById("field-label").value = decision.label || "";
    document.getElementById("field-cannot-judge").value = decision.cannot_judge ? "1" : "";
    document.getElementById("field-reason").value = decision.reason || "";
    if (decision.comment) note.value = [note.value, decision.comment].filter(Boolean).join(" — ");
    form.submit();
  }, viewerElement);
  note.addEventListener("keydown", (event) => { if (event.key === "Escape") note.blur(); });
  const fullSize = document.getElementById("full-size");
  const image = document.getElementById("current-image");
  function toggleFullSize() {
    const on = fullSize.getAttribute("aria-pressed") !== "true";
    fullSize.setAttribute("aria-pressed", String(on));
    fullSize.classList.toggle("chosen", on);
    image.src = on ? viewerElement.dataset.fullUrl : viewerElement.dataset.imageUrl;
  }
  fullSize.addEventListener("mousedown", (event) => event.preventDefault());
  fullSize.addEventListener("click", toggleFullSize);
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.tagName === "TEXTAREA" || event.target.tagName === "INPUT") return;
    if (event.key === "n" || event.key === "N") { note.focus(); event.preventDefault(); return; }
    if (!panel.inReasons() && !event.repeat && (event.key === "f" || event.key === "F")) {
      toggleFullSize();
      event.preventDefault();
      return;
    }
    if (panel.handleKey(event) || (!panel.inReasons() && viewer.handleKey(event))) event.preventDefault();
  });
})();

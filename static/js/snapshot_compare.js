/* "Compare with": go to the differences page of this snapshot and the one chosen. */
(function () {
  "use strict";
  const form = document.getElementById("compare-form");
  if (!form) return;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    window.location.href = form.dataset.diffUrl.replace(/\/0\/$/, `/${encodeURIComponent(form.elements.other.value)}/`);
  });
})();

/* The import page: poll the batch's status while it is queued or running. */
(function () {
  "use strict";
  const box = document.getElementById("batch");
  if (!box) return;
  const field = (name) => box.querySelector(`[data-field="${name}"]`);
  async function poll() {
    const response = await fetch(box.dataset.statusUrl, {headers: {Accept: "application/json"}});
    if (!response.ok) return;
    const s = await response.json();
    field("status").textContent = s.status;
    field("status").className = "badge " + s.status;
    field("counts").textContent = `${s.processed_files} / ${s.total_files}`;
    field("bar").style.width = `${Math.round(s.progress * 100)}%`;
    for (const k of ["imported", "already_present", "duplicates_exact", "rejected"]) field(k).textContent = s[k];
    field("error").textContent = s.error;
    if (s.status === "queued" || s.status === "running") setTimeout(poll, 1000);
    else location.reload();
  }
  const status = field("status").textContent;
  if (status === "queued" || status === "running") poll();
})();

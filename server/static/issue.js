// Issue to every imported beneficiary without a live voucher, 10,000 per request, showing
// progress; the page works without this script (one batch per click).
(function () {
  var form = document.getElementById("issue-imported");
  if (!form || !window.fetch) return;
  var bar = document.getElementById("issue-progress");
  var status = document.getElementById("issue-status");
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var button = form.querySelector("button");
    button.disabled = true;
    var done = 0;
    function batch() {
      fetch("/api/v1/programs/" + encodeURIComponent(form.dataset.program) + "/vouchers", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": form.dataset.csrf },
        body: JSON.stringify({ imported: true })
      }).then(function (r) {
        return r.json().then(function (j) { return { ok: r.ok, j: j }; });
      }).then(function (x) {
        if (!x.ok) { status.textContent = x.j.detail || "error"; button.disabled = false; return; }
        done += x.j.vouchers.length;
        bar.max = done + x.j.remaining;
        bar.value = done;
        status.textContent = done + " / " + (done + x.j.remaining);
        if (x.j.remaining > 0 && x.j.vouchers.length > 0) { batch(); } else { window.location.reload(); }
      }).catch(function (e) { status.textContent = String(e); button.disabled = false; });
    }
    batch();
  });
})();

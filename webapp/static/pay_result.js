// The return page asks the shop (never the provider's redirect) until the order is no longer
// awaiting payment, then shows the verdict; after data-poll-seconds it stops and says so.
(function () {
  "use strict";
  const verdict = document.getElementById("verdict");
  if (!verdict || !verdict.dataset.poll) return;
  document.getElementById("auto-update").hidden = false;  // only a page that asks says it will
  const deadline = Date.now() + 1000 * Number(verdict.dataset.pollSeconds);

  function giveUp() {
    document.getElementById("waiting").hidden = true;
    document.getElementById("gave-up").hidden = false;
    document.getElementById("pay-again").hidden = false;
  }
  function next() {
    if (Date.now() < deadline) setTimeout(poll, 2000); else giveUp();
  }
  function poll() {
    fetch(verdict.dataset.poll, {headers: {Accept: "application/json"}, cache: "no-store"})
      .then(answer => (answer.ok ? answer.json() : null))
      .then(order => {
        if (order && order.status !== "awaiting_payment") location.reload(); else next();
      }, next);
  }
  next();
})();

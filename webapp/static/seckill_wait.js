// A flash-sale order being made: ask every second (two minutes at most), then go and pay it.
(function () {
  "use strict";
  const state = document.getElementById("state");
  if (!state || !state.dataset.poll) return;
  const deadline = Date.now() + 120000;
  function next() {
    if (Date.now() < deadline) { setTimeout(poll, 1000); return; }
    document.getElementById("waiting").hidden = true;
    document.getElementById("gave-up").hidden = false;
  }
  function poll() {
    fetch(state.dataset.poll, {headers: {Accept: "application/json"}, cache: "no-store"})
      .then(answer => answer.json())
      .then(answer => {
        if (answer.pay_url) location.href = answer.pay_url;
        else if (answer.state !== "pending") location.reload();
        else next();
      }, next);
  }
  next();
})();

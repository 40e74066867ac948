// The QR page asks the shop every two seconds (half an hour at most) until the order is no
// longer awaiting payment, then goes to the return page; a closed order hides the code. An
// answer that is not the order (the shop busy or restarting, a proxy's error page) is asked
// again: it says nothing about the payment, and the shopper may still be scanning.
(function () {
  "use strict";
  const status = document.getElementById("qr-status");
  if (!status || !status.dataset.poll) return;
  const deadline = Date.now() + 1800000;

  function next() {
    if (Date.now() < deadline) setTimeout(poll, 2000);
  }
  function closed() {
    status.dataset.status = "closed";
    status.className = "note bad";
    status.textContent = "订单已过期关闭,请勿再扫码。";
    document.getElementById("qr-code").hidden = true;
  }
  function poll() {
    fetch(status.dataset.poll, {headers: {Accept: "application/json"}, cache: "no-store"})
      .then(answer => (answer.ok ? answer.json() : null))
      .then(order => {
        if (!order || !order.status || order.status === "awaiting_payment") next();
        else if (order.status === "closed") closed();
        else location.assign(status.dataset.back);
      }, next);
  }
  poll();
})();

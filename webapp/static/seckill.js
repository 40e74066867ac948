// The sale page: each sale's countdown on the server's clock, its buy button shown exactly when
// the server opens the sale, the click's answer written beside it, the units left every 2 s.
//
// The server writes its own time (data-server-now, ms) into the page; the page reads it against
// performance.now() at the moment the answer arrived (the navigation's responseStart), so the
// browser's own wall clock never counts. That estimate runs behind the server by the time the
// answer took to arrive, so the button shows a little late, never early.
(function () {
  "use strict";
  const sales = document.getElementById("sales");
  if (!sales) return;
  const [navigation] = performance.getEntriesByType("navigation");
  const arrived = navigation ? navigation.responseStart : 0;
  const serverNow = () => Number(sales.dataset.serverNow) + (performance.now() - arrived);
  const json = {headers: {Accept: "application/json"}, credentials: "same-origin"};

  function clock(ms) {
    const left = Math.ceil(ms / 1000);  // 0:00:01 until the very last millisecond
    const days = Math.floor(left / 86400), hours = Math.floor(left / 3600) % 24;
    const time = `${hours}:${String(Math.floor(left / 60) % 60).padStart(2, "0")}:${String(left % 60).padStart(2, "0")}`;
    return days ? `${days}天 ${time}` : time;
  }

  document.querySelectorAll(".sale-card").forEach(card => {
    const start = Number(card.dataset.start), end = Number(card.dataset.end);
    const state = card.querySelector(".sale-state"), countdown = card.querySelector(".countdown");
    const buy = card.querySelector(".buy"), result = card.querySelector(".result");
    let bought = false, waiting = false;

    function show(phase, text) {
      card.dataset.phase = phase;
      state.textContent = {soon: "即将开始", open: "进行中", ended: "已结束"}[phase];
      state.className = `badge sale-state ${{soon: "warn", open: "ok", ended: "muted"}[phase]}`;
      countdown.textContent = text;
      buy.hidden = phase !== "open" || bought || waiting;
    }
    (function tick() {
      const now = serverNow();
      if (now < start) { show("soon", `距开始 ${clock(start - now)}`); setTimeout(tick, Math.min(250, start - now)); }
      else if (now < end) { show("open", `距结束 ${clock(end - now)}`); setTimeout(tick, Math.min(250, end - now)); }
      else { show("ended", ""); }
    })();

    buy.addEventListener("click", event => {
      event.preventDefault();
      waiting = true;
      buy.hidden = true;
      fetch(buy.href, json).then(answer => answer.json()).then(answer => {
        result.textContent = answer.message;
        result.className = `result note ${answer.pay_url ? "ok" : "bad"}`;
        if (answer.pay_url) {
          bought = true;
          const pay = document.createElement("a");
          pay.className = "button pay-link";
          pay.href = answer.pay_url;
          pay.textContent = "去支付";
          card.querySelector(".sale-actions").append(pay);
        } else if (answer.outcome === "not_logged_in") {
          location.href = sales.dataset.login;
        }
      }).catch(() => {
        result.textContent = "网络不稳定,请重试";
        result.className = "result note bad";
      }).finally(() => {
        setTimeout(() => { waiting = false; buy.hidden = bought || card.dataset.phase !== "open"; }, bought ? 0 : 1000);
      });
    });
  });

  (function units() {  // the units left, every two seconds
    fetch(sales.dataset.units, json).then(answer => answer.json()).then(data => data.sales.forEach(sale => {
      const cell = document.querySelector(`#sale-${sale.sku_id} .units`);
      if (cell) cell.textContent = sale.units_left === null ? "—" : sale.units_left;
    })).catch(() => {}).finally(() => setTimeout(units, 2000));
  })();
})();

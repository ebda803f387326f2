// The mobile certificate waiting page: counts down, and asks Menshen's status endpoint
// (every 4 s; Menshen asks MOI at most that often) whether the phone has answered. On
// success it goes where the answer says; on a failure it reloads the page, which then shows
// the form with the failure's sentence (the sentences live on the server, not here).
(function () {
  "use strict";
  var timer = document.getElementById("countdown");
  if (!timer) { return; }
  var left = parseInt(timer.getAttribute("data-seconds"), 10) || 0;
  var template = timer.getAttribute("data-template") || "{s}";
  var statusUrl = timer.getAttribute("data-status");
  var waitUrl = timer.getAttribute("data-wait");
  var done = false;

  function show() {
    timer.textContent = template.replace("{s}", String(Math.max(left, 0)));
  }

  function finish(url) {
    done = true;
    window.location.assign(url);
  }

  function poll() {
    if (done) { return; }
    fetch(statusUrl, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(function (answer) {
        if (answer.state === "done" && answer.next) {
          finish(answer.next);
        } else if (answer.state === "failed") {
          finish(waitUrl);
        } else {
          window.setTimeout(poll, 4000);
        }
      })
      .catch(function () { window.setTimeout(poll, 4000); });
  }

  window.setInterval(function () {
    if (done) { return; }
    left -= 1;
    show();
    if (left < -5) { finish(waitUrl); }
  }, 1000);
  window.setTimeout(poll, 2000);
})();

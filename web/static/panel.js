// Lifeboat's control panel: live dashboard updates (server-sent events) and
// confirmations for forms marked `data-confirm`. Every page works without it.
(function () {
  "use strict";

  var live = document.getElementById("live");
  if (live && window.EventSource) {
    var status = document.getElementById("live-status");
    var source = new EventSource(live.getAttribute("data-events"));
    source.onopen = function () {
      if (status) status.classList.add("on");
    };
    source.onerror = function () {
      if (status) status.classList.remove("on");
    };
    source.addEventListener("dashboard", function (event) {
      // The server renders this fragment from the same template as the page.
      live.innerHTML = event.data;
    });
    source.addEventListener("ended", function () {
      // The session ended: the reload shows the login page.
      source.close();
      window.location.reload();
    });
  }

  document.addEventListener("submit", function (event) {
    var question = event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  // Selects that change the page (the mailbox list's domain) submit their form.
  var selects = document.querySelectorAll("select[data-submit]");
  for (var i = 0; i < selects.length; i++) {
    selects[i].addEventListener("change", function () {
      this.form.submit();
    });
  }
})();

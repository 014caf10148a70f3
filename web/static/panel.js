// Lifeboat's control panel and webmail: live updates (server-sent events) and
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

  // Webmail: on a change of the mailbox (new mail, or a change made elsewhere), the
  // page fetches itself and swaps its folder list and message list in place. Rows
  // the user ticked stay ticked.
  var mail = document.getElementById("mail");
  if (mail && window.EventSource && window.fetch && window.DOMParser) {
    var mailStatus = document.getElementById("live-status");
    var mailSource = new EventSource(mail.getAttribute("data-events"));
    var swap = function (doc, id) {
      var now = document.getElementById(id);
      var next = doc.getElementById(id);
      if (now && next) now.replaceWith(next);
    };
    var refresh = function () {
      fetch(window.location.href, { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          if (!html) return;
          var doc = new DOMParser().parseFromString(html, "text/html");
          swap(doc, "mail-folders");
          var list = document.getElementById("list-form");
          var nextList = doc.getElementById("list-form");
          if (list && nextList) {
            var ticked = {};
            var boxes = list.querySelectorAll("input[name=uid]:checked");
            for (var i = 0; i < boxes.length; i++) ticked[boxes[i].value] = true;
            var nextBoxes = nextList.querySelectorAll("input[name=uid]");
            for (var j = 0; j < nextBoxes.length; j++) {
              if (ticked[nextBoxes[j].value]) nextBoxes[j].checked = true;
            }
            list.replaceWith(nextList);
            bindSelectAll();
            var pager = document.querySelector(".mail-main > .pager");
            var nextPager = doc.querySelector(".mail-main > .pager");
            if (pager && nextPager) pager.replaceWith(nextPager);
          }
          if (doc.title) document.title = doc.title;
        })
        .catch(function () {});
    };
    mailSource.onopen = function () {
      if (mailStatus) mailStatus.classList.add("on");
    };
    mailSource.onerror = function () {
      if (mailStatus) mailStatus.classList.remove("on");
    };
    mailSource.addEventListener("ready", refresh);
    mailSource.addEventListener("mail", refresh);
    mailSource.addEventListener("ended", function () {
      mailSource.close();
      window.location.reload();
    });
  }

  // "Select all" boxes tick every box of their form with the named field.
  function bindSelectAll() {
    var all = document.querySelectorAll("input[data-select-all]");
    for (var i = 0; i < all.length; i++) {
      all[i].addEventListener("change", function () {
        var name = this.getAttribute("data-select-all");
        var boxes = this.form.querySelectorAll("input[name=" + name + "]");
        for (var j = 0; j < boxes.length; j++) boxes[j].checked = this.checked;
      });
    }
  }
  bindSelectAll();

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

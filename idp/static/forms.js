/* Small helpers for every page (no inline script: the CSP allows scripts from this origin only).
 *
 * - After a refused form, focus goes to the error summary (templates/_forms.html), so a screen reader
 *   reads what went wrong and a keyboard user starts from there; its links move focus to the field.
 * - A "back" link (data-back) is shown only when there is a page to go back to.
 * Everything works without this file; it only saves people steps.
 */
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState !== "loading") {
      fn();
    } else {
      document.addEventListener("DOMContentLoaded", fn);
    }
  }

  function focusField(id) {
    var target = document.getElementById(id);
    if (!target) {
      return false;
    }
    var box = target.closest("fieldset") || target.closest(".field") || target;
    box.scrollIntoView({ block: "start" });
    target.focus({ preventScroll: true });
    return true;
  }

  ready(function () {
    var summary = document.querySelector("[data-error-summary]");
    if (summary) {
      summary.focus();
      summary.addEventListener("click", function (event) {
        var link = event.target.closest("a[href^='#']");
        if (link && focusField(link.getAttribute("href").slice(1))) {
          event.preventDefault();
        }
      });
    }

    // The skip link: some browsers scroll to #main without moving keyboard focus there.
    var skip = document.querySelector("a.skip-link");
    var main = document.getElementById("main");
    if (skip && main) {
      skip.addEventListener("click", function (event) {
        event.preventDefault();
        main.focus();
        main.scrollIntoView({ block: "start" });
      });
    }

    var backs = document.querySelectorAll("[data-back]");
    for (var i = 0; i < backs.length; i++) {
      if (window.history.length > 1) {
        backs[i].hidden = false;
        backs[i].addEventListener("click", function (event) {
          event.preventDefault();
          window.history.back();
        });
      }
    }
  });
})();

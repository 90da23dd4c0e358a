/* "New picture" for the captcha (templates/security/_captcha.html), in place.
   Without this script the link reloads the page, which draws a new challenge too; with it, the
   picture, the audio and the hidden challenge id are swapped without losing what was typed in the
   other fields. Any failure falls back to following the link. Loaded once per captcha: guarded. */
(function () {
  "use strict";

  function enhance(box) {
    if (box.getAttribute("data-captcha-ready")) { return; }
    box.setAttribute("data-captcha-ready", "1");
    var link = box.querySelector("[data-captcha-refresh]");
    if (!link || !window.fetch) { return; }
    var image = box.querySelector("[data-captcha-image]");
    var audio = box.querySelector("[data-captcha-audio]");
    var audioLink = box.querySelector("[data-captcha-audio-link]");
    var hidden = box.querySelector("[data-captcha-id]");
    var status = box.querySelector("[data-captcha-status]");
    var input = box.querySelector("input[inputmode]");
    var busy = false;

    function refresh(event) {
      event.preventDefault();
      if (busy) { return; }
      busy = true;
      fetch(box.getAttribute("data-captcha-new"), {
        headers: { "Accept": "application/json" }, credentials: "same-origin", cache: "no-store"
      }).then(function (resp) {
        if (!resp.ok) { throw new Error("captcha refresh: " + resp.status); }
        return resp.json();
      }).then(function (data) {
        image.src = data.image;
        if (audio) { audio.pause(); audio.src = data.audio; audio.load(); }
        if (audioLink) { audioLink.href = data.audio; }
        hidden.value = data.id;
        if (input) { input.value = ""; input.focus(); }
        if (status) { status.textContent = box.getAttribute("data-captcha-refreshed") || ""; }
        busy = false;
      }).catch(function () {
        window.location.href = link.href;
      });
    }

    link.setAttribute("role", "button");
    link.addEventListener("click", refresh);
    link.addEventListener("keydown", function (event) {
      if (event.key === " " || event.key === "Spacebar") { refresh(event); }
    });
  }

  function start() {
    var boxes = document.querySelectorAll("[data-captcha]");
    for (var i = 0; i < boxes.length; i++) { enhance(boxes[i]); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();

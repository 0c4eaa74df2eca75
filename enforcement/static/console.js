// The officers' pages: enlarge images in a lightbox, keyboard shortcuts on the review queue.
// A static file (a strict Content Security Policy forbids inline script); the pages work
// without it: an image link opens the image, the buttons submit the forms.
(function () {
  "use strict";

  var lightbox = null;

  function closeLightbox() {
    if (lightbox) { lightbox.remove(); lightbox = null; }
  }

  function openLightbox(link) {
    closeLightbox();
    lightbox = document.createElement("div");
    lightbox.className = "lightbox";
    lightbox.id = "lightbox";
    var frame = document.createElement("div");
    frame.className = "frame";
    var thumb = link.querySelector("img");
    var img = document.createElement("img");
    img.src = link.href;
    img.alt = thumb.alt;
    // As large as the window allows, small images included (the plume outline scales along).
    var w = Number(thumb.getAttribute("width")), h = Number(thumb.getAttribute("height"));
    var scale = Math.min(window.innerWidth * 0.96 / w, window.innerHeight * 0.92 / h);
    img.width = Math.round(w * scale);
    img.height = Math.round(h * scale);
    frame.appendChild(img);
    var plume = link.querySelector("svg.plume");
    if (plume) frame.appendChild(plume.cloneNode(true));
    var hint = document.createElement("span");
    hint.className = "hint";
    hint.textContent = "Esc ✕";
    lightbox.appendChild(frame);
    lightbox.appendChild(hint);
    lightbox.addEventListener("click", closeLightbox);
    document.body.appendChild(lightbox);
  }

  function sections() {
    return Array.prototype.slice.call(document.querySelectorAll("section.snapshot"));
  }

  function selected() {
    return document.querySelector("section.snapshot.selected");
  }

  function select(section) {
    var current = selected();
    if (current) current.classList.remove("selected");
    if (section) {
      section.classList.add("selected");
      section.scrollIntoView({block: "nearest"});
    }
  }

  function move(step) {
    var all = sections();
    var at = all.indexOf(selected());
    var next = all[Math.min(Math.max(at + step, 0), all.length - 1)];
    if (next) select(next);
  }

  function decide(decision) {
    var section = selected();
    var form = section && section.querySelector("form.decide");
    if (!form) return;
    var button = form.querySelector("button[value=" + decision + "]");
    if (form.requestSubmit) form.requestSubmit(button); else button.click();
  }

  function typing(target) {
    return target && (target.isContentEditable || /^(INPUT|SELECT|TEXTAREA)$/.test(target.tagName));
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a.enlarge");
    if (link && !event.ctrlKey && !event.metaKey && !event.shiftKey) {
      event.preventDefault();
      openLightbox(link);
      return;
    }
    var section = event.target.closest && event.target.closest("section.snapshot");
    if (section) select(section);
  });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") { closeLightbox(); return; }
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    var actions = {
      j: function () { move(1); },
      k: function () { move(-1); },
      c: function () { decide("confirm"); },
      r: function () { decide("reject"); },
      o: function () {
        var link = selected() && selected().querySelector("a.enlarge");
        if (link) openLightbox(link);
      }
    };
    var action = actions[event.key];
    if (action) { event.preventDefault(); action(); }
  });

  document.addEventListener("DOMContentLoaded", function () {
    if (document.querySelector("form.decide")) select(sections()[0]);
  });
})();

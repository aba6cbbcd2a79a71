/* Signoff admin pages: copy buttons and the branding preview. Optional: every page
   works without it (the buttons stay hidden, the server checks every accent). */
(function () {
  "use strict";
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var target = document.getElementById(button.getAttribute("data-copy"));
    if (!target || !navigator.clipboard) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      var text = "value" in target ? target.value : target.textContent;
      navigator.clipboard.writeText(text).then(function () {
        button.textContent = "Copied";
        button.setAttribute("aria-live", "polite");
        setTimeout(function () { button.textContent = "Copy"; }, 2000);
      }, function () {
        if (target.select) { target.select(); }
        button.textContent = "Press Ctrl+C to copy";
      });
    });
  });

  function channel(v) {
    var c = v / 255;
    return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
  }
  function luminance(hex) {
    var n = parseInt(hex.slice(1), 16);
    return 0.2126 * channel((n >> 16) & 255) + 0.7152 * channel((n >> 8) & 255) + 0.0722 * channel(n & 255);
  }
  function contrast(a, b) {
    var x = luminance(a), y = luminance(b);
    return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
  }
  var input = document.getElementById("accent_color");
  var preview = document.getElementById("branding-preview");
  var verdict = document.getElementById("contrast-verdict");
  var nameInput = document.getElementById("name");
  if (input && preview && verdict) {
    var update = function () {
      var color = input.value;
      if (!/^#[0-9a-fA-F]{6}$/.test(color)) { return; }
      preview.style.setProperty("--accent", color);
      var ratio = Math.min(contrast(color, "#ffffff"), contrast(color, "#eef2ff"));
      var ok = ratio >= 4.5;
      verdict.textContent = "Contrast " + ratio.toFixed(1) + ":1 — " +
        (ok ? "readable." : "too light: at least 4.5:1 is needed, choose a darker colour.");
      verdict.className = ok ? "contrast ok" : "contrast bad";
      if (nameInput) {
        var brand = preview.querySelector("[data-preview-name]");
        if (brand) { brand.textContent = nameInput.value; }
      }
    };
    input.addEventListener("input", update);
    if (nameInput) { nameInput.addEventListener("input", update); }
    update();
  }
})();

/* The OpenAPI browser (FAB's bundled Swagger UI), when the page has one. */
(function () {
  "use strict";
  var holder = document.getElementById("swagger-ui");
  if (!holder || typeof window.SwaggerUIBundle !== "function") { return; }
  window.SwaggerUIBundle({
    url: holder.getAttribute("data-openapi-url"),
    dom_id: "#swagger-ui",
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    persistAuthorization: false,
    validatorUrl: null
  });
})();

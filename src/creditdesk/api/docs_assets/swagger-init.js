// Starts Swagger UI on /docs. A file, not an inline script, so the page runs under the app's
// Content-Security-Policy (script-src 'self'); the document's URL comes from a data attribute.
(function () {
  "use strict";
  var node = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: node.getAttribute("data-openapi-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    // The default validator badge fetches an image from validator.swagger.io: nothing leaves this host.
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
    layout: "BaseLayout"
  });
})();

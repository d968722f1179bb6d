// Starts ReDoc on /redoc from the installed bundle (see swagger-init.js for why this is a file).
(function () {
  "use strict";
  var node = document.getElementById("redoc");
  Redoc.init(node.getAttribute("data-openapi-url"), { disableSearch: false, hideDownloadButton: false }, node);
})();

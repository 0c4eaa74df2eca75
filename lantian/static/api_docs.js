// Swagger UI over Lantian's own OpenAPI document; a file, not an inline script, so that a
// Content-Security-Policy of script-src 'self' still lets the page run.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: document.body.dataset.specUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: true,
    displayRequestDuration: true,
    defaultModelsExpandDepth: 0,
  });
});

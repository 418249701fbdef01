"""The HTTP doors: pages, forms, URLs, the security-header middleware and the login throttle."""

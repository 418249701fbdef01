"""The Content-Security-Policy header, built from settings.SECURE_CSP."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin

HEADER = "Content-Security-Policy"


def csp_header(policy: dict[str, list[str]]) -> str:
    """`{"script-src": ["'self'"], …}` → `"script-src 'self'; …"`."""
    return "; ".join(" ".join([directive, *sources]) for directive, sources in policy.items())


class ContentSecurityPolicyMiddleware(MiddlewareMixin):
    """Give every response the site's policy, unless a view set its own."""

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if HEADER in response:
            return response
        if settings.DEBUG and (response.status_code == 404 or response.status_code >= 500):
            # Django's debug error pages are styled and scripted inline; production's are ours.
            return response
        response[HEADER] = csp_header(settings.SECURE_CSP)
        return response

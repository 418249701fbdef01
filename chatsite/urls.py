from django.contrib import admin
from django.urls import include, path

from chat.realtime import health
from chat.web import views as chat_views

urlpatterns = [
    # Both login forms run behind the failed-login throttle; these come first to take over
    # the paths of Django's own login views.
    path("admin/login/", chat_views.admin_login),
    path("admin/", admin.site.urls),
    path("accounts/signup/", chat_views.signup, name="signup"),
    path("accounts/login/", chat_views.login_page, name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("", include("chat.web.urls")),
]

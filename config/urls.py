from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts.views import home
from core.health import healthz

api_v1 = [
    path("", include("accounts.api_urls")),
    path("", include("curation.api_urls")),
    path("", include("labeling.api_urls")),
    path("", include("ml.api_urls")),
]

handler400 = "core.api.bad_request"
handler404 = "core.api.not_found"

urlpatterns = [
    path("", home, name="home"),
    path("healthz", healthz, name="healthz"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its start-up code as a script of its own: the CSP allows no inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("curation.urls")),
    path("", include("labeling.urls")),
    path("", include("ml.urls")),
]

# Outages (database, job queue) answer 503 with a clear message instead of a 500.
handler500 = "core.views.server_error"

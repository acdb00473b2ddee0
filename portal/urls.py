from django.contrib.auth.decorators import login_required
from django.urls import path, reverse_lazy
from django.views.i18n import set_language

from . import views
from .pages import MODULES

app_name = "portal"
_login = reverse_lazy("portal:login")

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("password/", login_required(views.PasswordChangeView.as_view(), login_url=_login),
         name="password_change"),
    path("password/done/", login_required(views.PasswordChangeDoneView.as_view(),
                                          login_url=_login), name="password_change_done"),
    path("operator/", views.operator_switch, name="operator_switch"),
    path("language/", set_language, name="set_language"),
]

for _module in MODULES:
    urlpatterns += _module.urlpatterns

"""The console's addresses. Every page is listed here; nothing else answers."""

from __future__ import annotations

from django.urls import path
from django.views.i18n import set_language

from gateway.console.views import (
    account,
    audit,
    digest,
    mail,
    outbound,
    ppap,
    rules,
    static,
    statistics,
    users,
)

urlpatterns = [
    path("", mail.mail_list, name="mail_list"),
    path("login", account.login, name="login"),
    path("logout", account.logout, name="logout"),
    path("language", set_language, name="language"),
    path("mail/<str:ref>", mail.message, name="message"),
    path("mail/<str:ref>/download", mail.download, name="download"),
    path("mail/<str:ref>/release", mail.release, name="release"),
    path("mail/<str:ref>/request", mail.request_release, name="request"),
    path("mail/<str:ref>/approve", mail.approve, name="approve"),
    path("mail/<str:ref>/deny", mail.deny, name="deny"),
    path("outbound", outbound.outbound_list, name="outbound"),
    path("outbound/cancel/<str:queue_id>", outbound.cancel, name="outbound_cancel"),
    path("outbound/<str:ref>", outbound.outbound_message, name="outbound_message"),
    path("outbound/<str:ref>/approve", outbound.approve, name="outbound_approve"),
    path("outbound/<str:ref>/reject", outbound.reject, name="outbound_reject"),
    path("ppap/mail/<str:ref>", ppap.by_user, name="ppap_mail"),
    path("ppap/<str:token>", ppap.by_link, name="ppap_link"),
    path("digest/<str:token>", digest.by_link, name="digest_link"),
    path("statistics", statistics.statistics, name="statistics"),
    path("audit", audit.audit_trail, name="audit"),
    path("rules", rules.rules, name="rules"),
    path("explain", rules.explain_page, name="explain"),
    path("users", users.users, name="users"),
    path("static/console.css", static.stylesheet, name="stylesheet"),
]

handler404 = "gateway.console.views.errors.page_not_found"
handler500 = "gateway.console.views.errors.server_error"

from django.urls import path

from . import views

app_name = "chat"

urlpatterns = [
    path("", views.lobby, name="lobby"),
    path("people/", views.people, name="people"),
    path("search/", views.search, name="search"),
    path("people/group/", views.people_group, name="people_group"),
    path("people/profiles/", views.people_profiles, name="people_profiles"),
    path("rooms/new/", views.room_create, name="room_create"),
    path("fallback/chat/send/", views.fallback_send, name="fallback_send"),
    path("chat/@<str:username>/", views.direct, name="direct"),
    path("chat/<slug:slug>/", views.room, name="room"),
    path("chat/<slug:slug>/files/", views.file_upload, name="file_upload"),
    path("files/<int:file_id>/thumb/", views.file_thumb, name="file_thumb"),
    path("files/<int:file_id>/<str:name>", views.file_download, name="file"),
    path("chat/<slug:slug>/join/", views.room_join, name="room_join"),
    path("chat/<slug:slug>/leave/", views.room_leave, name="room_leave"),
    path("chat/<slug:slug>/star/", views.room_star, name="room_star"),
    path("chat/<slug:slug>/notify/", views.room_notify, name="room_notify"),
    path("chat/<slug:slug>/people/", views.direct_add_people, name="direct_add_people"),
    path("chat/<slug:slug>/settings/", views.room_settings, name="room_settings"),
    path("chat/<slug:slug>/settings/details/", views.room_settings_details, name="room_details"),
    path("chat/<slug:slug>/settings/invite/", views.room_settings_invite, name="room_invite"),
    path("chat/<slug:slug>/settings/remove/", views.room_settings_remove, name="room_remove"),
    path(
        "chat/<slug:slug>/settings/owner/", views.room_settings_make_owner, name="room_make_owner"
    ),
    path(
        "chat/<slug:slug>/settings/step-down/", views.room_settings_step_down, name="room_step_down"
    ),
    path("chat/<slug:slug>/settings/archive/", views.room_settings_archive, name="room_archive"),
    path(
        "chat/<slug:slug>/settings/unarchive/",
        views.room_settings_unarchive,
        name="room_unarchive",
    ),
    path("usernames/", views.usernames, name="usernames"),
    path("account/", views.account, name="account"),
    path("account/notifications/", views.account_notifications, name="account_notifications"),
    path("media/<path:path>", views.media, name="media"),
]

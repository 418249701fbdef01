from django.urls import path

from . import views

app_name = "chat"

urlpatterns = [
    path("", views.lobby, name="lobby"),
    path("people/", views.people, name="people"),
    path("people/group/", views.people_group, name="people_group"),
    path("rooms/new/", views.room_create, name="room_create"),
    path("fallback/chat/send/", views.fallback_send, name="fallback_send"),
    path("chat/@<str:username>/", views.direct, name="direct"),
    path("chat/<slug:slug>/", views.room, name="room"),
    path("chat/<slug:slug>/join/", views.room_join, name="room_join"),
    path("chat/<slug:slug>/leave/", views.room_leave, name="room_leave"),
    path("chat/<slug:slug>/star/", views.room_star, name="room_star"),
]

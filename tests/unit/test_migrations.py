"""Data migrations, run forwards on rows made with the models of the migration before."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE, AFTER = ("chat", "0004_direct_rooms_announcements"), ("chat", "0005_direct_key")


def test_existing_dms_are_keyed_by_their_pair_and_a_squatter_is_not_a_dm(make_user):
    alice, carol, mallory = make_user("alice"), make_user("carol"), make_user("mallory")
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    Room = executor.loader.project_state([BEFORE]).apps.get_model("chat", "Room")
    dm = Room.objects.create(name="a & m", slug=f"dm-{alice.pk}-{mallory.pk}", is_direct=True)
    dm.is_private = True
    dm.save()
    dm.members.add(alice.pk, mallory.pk)
    squat = Room.objects.create(name="Dm", slug=f"dm-{alice.pk}-{carol.pk}")
    squat.members.add(mallory.pk)

    executor = MigrationExecutor(connection)
    executor.migrate([AFTER])

    Room = executor.loader.project_state([AFTER]).apps.get_model("chat", "Room")
    assert Room.objects.get(pk=dm.pk).direct_key == f"{alice.pk}:{mallory.pk}"
    squat = Room.objects.get(pk=squat.pk)
    assert (squat.is_direct, squat.direct_key) == (False, None)
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

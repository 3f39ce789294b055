"""The global job scheduler switch: stored, admin-only to change, and what it blocks."""

from __future__ import annotations

from tests.api.test_workloads import create_workload, show, wait_status
from tests.conftest import Service


def test_switch_is_stored_and_reported(api: Service) -> None:
    admin = api.token("admin", "root", roles=("admin",))
    with api.client(admin) as client:
        assert client.get("/v1/admin/global_job_scheduler").json() == {"global_job_scheduler": True}
        assert client.post("/v1/admin/global_job_scheduler/disable").json() == {"global_job_scheduler": False}
        assert client.get("/v1/admin/global_job_scheduler").json() == {"global_job_scheduler": False}
        assert client.post("/v1/admin/global_job_scheduler/enable").json() == {"global_job_scheduler": True}
    from cairn.workloads import global_scheduler
    with api.runtime.database.reader() as session:
        assert global_scheduler.is_enabled(session) is True


def test_with_the_scheduler_off_a_schedule_change_is_refused_and_nextrun_hidden(api: Service) -> None:
    admin = api.token("admin", "root", roles=("admin",))
    token = api.token("p1")
    created = create_workload(api, token, [api.add_instance()])
    wait_status(api, token, created["id"], "available")
    assert "nextrun" in show(api, token, created["id"])["jobschedule"]
    with api.client(admin) as client:
        client.post("/v1/admin/global_job_scheduler/disable")
    try:
        with api.client(token) as client:
            refused = client.put(f"/v1/p1/workloads/{created['id']}",
                                 json={"workload": {"jobschedule": {"interval": "2"}}})
            renamed = client.put(f"/v1/p1/workloads/{created['id']}", json={"workload": {"name": "ok"}})
        assert refused.status_code == 400
        assert refused.json()["badRequest"]["message"] == \
            "Cannot update scheduler related fields when global jobscheduler is disabled."
        assert renamed.status_code == 202
        schedule = show(api, token, created["id"])["jobschedule"]
        assert schedule["global_jobscheduler"] is False and "nextrun" not in schedule
    finally:
        with api.client(admin) as client:
            client.post("/v1/admin/global_job_scheduler/enable")

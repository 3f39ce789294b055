"""`openstack workload …` as a tenant and an admin use it: the real `openstack` command
in a subprocess, authenticated by a real Keystone, finding Cairn in its catalog, against
a running Cairn with local instances. Each check is on what the user sees: tables, JSON,
YAML, chosen columns, exit status and the error's text."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from cairn.platforms.local import list_instances, register_instance
from tests.auth.keystone_server import REGION
from tests.conftest import Service, wait_for_idle
from tests.osc.conftest import OPENSTACK, Osc, user_env

MIB = 1 << 20
# Each `openstack` run starts a new OpenStackClient (1.5-2 s of CPU) and a story runs a
# dozen; the first test also waits for Keystone's set-up. Past pytest's 600 s only on a
# machine loaded many times over.
pytestmark = pytest.mark.timeout(1800)


def make_vm(service: Service, project: str, name: str, seed: int = 1) -> tuple[str, Path]:
    """A local instance of `project` whose 4 MiB raw disk holds known bytes at 1 MiB."""
    path = service.data_dir / "disks" / f"{name}-{uuid.uuid4().hex[:8]}.raw"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.truncate(4 * MIB)
        handle.seek(MIB)
        handle.write(bytes([seed]) * 64 * 1024 + os.urandom(64 * 1024))
    with service.runtime.database.unit_of_work() as session:
        return register_instance(session, project, name, [str(path)]).id, path


def disk_of(service: Service, instance_id: str) -> Path:
    with service.runtime.database.reader() as session:
        (found,) = [i for i in list_instances(session) if i.id == instance_id]
    return Path(found.disks[0].path)


def table_rows(text: str) -> list[list[str]]:
    """The cells of an OpenStackClient table, header first (border lines dropped)."""
    return [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.startswith("|")]


def test_create_snapshot_and_restore_a_workload_from_the_command_line(osc: Osc) -> None:
    service = osc.service
    alice = osc.keystone.users["alice"]
    vm, disk = make_vm(service, alice.project_id, "web1")
    original = disk.read_bytes()

    created = osc.ok("workload", "create", "--name", "web", "--description", "front end", "--instance", vm,
                     "--jobschedule", "interval=12hr", "--jobschedule", "enabled=false",
                     "--metadata", "team=web", "--wait", "-f", "json").json()
    assert (created["name"], created["description"], created["status"]) == ("web", "front end", "available")
    assert [i["id"] for i in created["instances"]] == [vm]
    assert created["metadata"]["team"] == "web"
    assert created["jobschedule"]["interval"] == "12" and created["jobschedule"]["enabled"] is False
    assert created["project_id"] == alice.project_id and created["user_id"] == alice.user_id
    assert "links" not in created
    workload = created["id"]

    table = table_rows(osc.ok("workload", "list").stdout)
    assert table[0] == ["ID", "Name", "Status", "Workload Type", "Created At"]
    assert [row[:3] for row in table[1:]] == [[workload, "web", "available"]]
    assert osc.ok("workload", "list", "-f", "json", "-c", "ID", "-c", "Name").json() == [
        {"ID": workload, "Name": "web"}]
    assert osc.ok("workload", "show", "web", "-f", "value", "-c", "id", "-c", "status").stdout.split() == [
        workload, "available"]

    snapshot = osc.ok("workload", "snapshot", "create", "web", "--full", "--name", "first", "--wait",
                      "-f", "json").json()
    assert (snapshot["name"], snapshot["status"], snapshot["snapshot_type"]) == ("first", "available", "full")
    assert snapshot["workload_id"] == workload and snapshot["progress_percent"] == 100
    assert snapshot["size"] > 0
    assert [d["size"] for d in snapshot["instances"][0]["vdisks"]] == [4 * MIB]
    listed = osc.ok("workload", "snapshot", "list", "--workload", "web", "-f", "value", "-c", "ID", "-c", "Status")
    assert listed.stdout.split() == [snapshot["id"], "available"]

    wait_for_idle(service)
    restore = osc.ok("workload", "restore", "oneclick", snapshot["id"], "--name", "r1", "--wait",
                     "-f", "json").json()
    assert (restore["name"], restore["status"], restore["restore_type"]) == ("r1", "available", "oneclick")
    (restored,) = restore["instances"]
    assert restored["id"] != vm
    assert disk_of(service, restored["id"]).read_bytes() == original
    restores = table_rows(osc.ok("workload", "restore", "list", "--snapshot", "first").stdout)
    assert restores[0] == ["ID", "Name", "Snapshot ID", "Type", "Status", "Size", "Created At"]
    assert [row[:5] for row in restores[1:]] == [[restore["id"], "r1", snapshot["id"], "oneclick", "available"]]
    shown = osc.ok("workload", "restore", "show", "r1", "-f", "yaml").stdout
    assert yaml.safe_load(shown)["instances"] == [restored]

    wait_for_idle(service)
    osc.ok("workload", "modify", "web", "--name", "web-tier", "--metadata", "team=ops")
    wait_for_idle(service)
    modified = osc.ok("workload", "show", workload, "-f", "json").json()
    assert (modified["name"], modified["metadata"]["team"]) == ("web-tier", "ops")

    refused = osc.run("workload", "delete", workload)
    assert refused.returncode == 1
    assert "This workload contains snapshots. Delete all its snapshots first. (HTTP 409)" in refused.stderr
    osc.ok("workload", "snapshot", "delete", snapshot["id"])
    wait_for_idle(service)
    osc.ok("workload", "delete", "web-tier")
    wait_for_idle(service)
    assert osc.ok("workload", "list", "-f", "json").json() == []


def test_selective_and_inplace_restores_take_their_choices_from_a_json_file(osc: Osc, tmp_path: Path) -> None:
    service = osc.service
    alice = osc.keystone.users["alice"]
    vm_a, disk_a = make_vm(service, alice.project_id, "db1", seed=1)
    vm_b, _ = make_vm(service, alice.project_id, "db2", seed=2)
    original = disk_a.read_bytes()
    osc.ok("workload", "create", "--name", "db", "--instance", f"instance-id={vm_a}", "--instance", vm_b,
           "--wait")
    snapshot = osc.ok("workload", "snapshot", "create", "db", "--wait", "-f", "json").json()
    wait_for_idle(service)

    choices = tmp_path / "selective.json"
    choices.write_text(json.dumps({"openstack": {"instances": [
        {"id": vm_a, "include": True, "name": "db1-copy"}, {"id": vm_b, "include": False}]}}))
    selective = osc.ok("workload", "restore", "selective", snapshot["id"], "--filename", str(choices),
                       "--wait", "-f", "json").json()
    assert (selective["status"], selective["restore_type"]) == ("available", "selective")
    assert [i["name"] for i in selective["instances"]] == ["db1-copy"]
    assert disk_of(service, selective["instances"][0]["id"]).read_bytes() == original
    wait_for_idle(service)

    with open(disk_a, "r+b") as handle:  # the instance's disk goes bad after the snapshot
        handle.seek(MIB)
        handle.write(b"\xff" * 128 * 1024)
    only_a = tmp_path / "inplace.json"
    only_a.write_text(json.dumps({"instances": [{"id": vm_a, "include": True}, {"id": vm_b, "include": False}]}))
    inplace = osc.ok("workload", "restore", "inplace", snapshot["id"], "--filename", str(only_a), "--wait",
                     "-f", "json").json()
    assert (inplace["status"], inplace["restore_type"]) == ("available", "inplace")
    assert disk_a.read_bytes() == original

    not_json = tmp_path / "broken.json"
    not_json.write_text("{instances: ")
    broken = osc.run("workload", "restore", "selective", snapshot["id"], "--filename", str(not_json))
    assert broken.returncode == 1 and f"--filename: {not_json} is not valid JSON" in broken.stderr
    wait_for_idle(service)


def test_errors_print_the_faults_message_and_exit_1(osc: Osc) -> None:
    alice = osc.keystone.users["alice"]
    missing = str(uuid.uuid4())
    unknown = osc.run("workload", "show", missing)
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert f"Workload {missing} could not be found. (HTTP 404) (Request-ID: req-" in unknown.stderr

    no_vm = osc.run("workload", "create", "--name", "x", "--instance", missing)
    assert no_vm.returncode == 1
    assert f"Instance {missing} could not be found. (HTTP 400)" in no_vm.stderr

    vm, _ = make_vm(osc.service, alice.project_id, "web1")
    bad_date = osc.run("workload", "create", "--name", "x", "--instance", vm, "--jobschedule",
                       "end_date=15/27/2020")
    assert bad_date.returncode == 1
    assert "jobschedule.end_date: '15/27/2020' is not a date of the form MM/DD/YYYY" in bad_date.stderr
    assert "(HTTP 400)" in bad_date.stderr
    not_pair = osc.run("workload", "create", "--name", "x", "--instance", vm, "--metadata", "team")
    assert not_pair.returncode == 1 and "--metadata: 'team' is not of the form KEY=VALUE." in not_pair.stderr
    assert osc.ok("workload", "list", "-f", "json").json() == []  # nothing was written

    member_policy = osc.run("workload", "policy", "create", "--name", "gold", "--interval", "24hr",
                            "--retention-policy-type", "Number of Snapshots to Keep",
                            "--retention-policy-value", "7", "--fullbackup-interval", "-1")
    assert member_policy.returncode == 1
    assert "Policy doesn't allow workload:policy_create to be performed. (HTTP 403)" in member_policy.stderr

    no_region = osc.run("workload", "list", env=user_env(alice, OS_REGION_NAME="Nowhere"))
    assert no_region.returncode == 1
    assert "The Keystone catalog has no public endpoint of type 'workloads' in region Nowhere" in no_region.stderr


def test_clouds_yaml_and_yaml_output(osc: Osc, tmp_path: Path) -> None:
    alice = osc.keystone.users["alice"]
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(yaml.safe_dump({"clouds": {"test": {
        "auth": {"auth_url": alice.auth_url, "username": "alice", "password": alice.password,
                 "project_name": "alpha", "user_domain_name": "Default", "project_domain_name": "Default"},
        "region_name": REGION, "interface": "public", "identity_api_version": 3}}}))
    env = {k: v for k, v in user_env(alice).items() if not k.startswith("OS_")}
    env.update({"OS_CLOUD": "test", "OS_CLIENT_CONFIG_FILE": str(clouds)})
    types = osc.run("workload", "type", "list", "-f", "yaml", env=env)
    assert types.returncode == 0, types.stderr
    assert sorted(t["Name"] for t in yaml.safe_load(types.stdout)) == ["Parallel", "Serial"]
    scheduler = osc.run("workload", "global-job-scheduler", "show", "-f", "json", env=env)
    assert json.loads(scheduler.stdout) == {"global_job_scheduler": True}


def test_an_admin_manages_policies_and_the_global_scheduler(osc: Osc) -> None:
    alice = osc.keystone.users["alice"]
    gold = osc.ok("workload", "policy", "create", "--name", "gold", "--description", "daily", "--interval",
                  "24hr", "--retention-policy-type", "Number of Snapshots to Keep", "--retention-policy-value",
                  "7", "--fullbackup-interval", "-1", "-f", "json", user="root").json()
    assert gold["name"] == "gold"
    assert {f["policy_field_name"]: f["value"] for f in gold["field_values"]}["retention_policy_value"] == "7"
    assigned = osc.ok("workload", "policy", "assign", "gold", "--add-project", alice.project_id, "-f", "json",
                      user="root").json()
    assert assigned["policy_assignments"] == [{"project_id": alice.project_id, "policy_name": "gold"}]
    assert assigned["failed_ids"] == []
    assert osc.ok("workload", "policy", "assigned", "-f", "json").json() == [
        {"Policy ID": gold["id"], "Policy Name": "gold"}]

    vm, _ = make_vm(osc.service, alice.project_id, "web1")
    without = osc.run("workload", "create", "--name", "web", "--instance", vm)
    assert without.returncode == 1 and gold["id"] in without.stderr and "(HTTP 400)" in without.stderr
    created = osc.ok("workload", "create", "--name", "web", "--instance", vm, "--policy-id", gold["id"],
                     "--wait", "-f", "json").json()
    assert created["metadata"]["policy_id"] == gold["id"]
    in_use = osc.run("workload", "policy", "delete", "gold", user="root")
    assert in_use.returncode == 1 and "(HTTP 409)" in in_use.stderr

    refused = osc.run("workload", "global-job-scheduler", "disable")
    assert refused.returncode == 1
    assert "Policy doesn't allow" in refused.stderr and "(HTTP 403)" in refused.stderr
    off = osc.ok("workload", "global-job-scheduler", "disable", "-f", "value", user="root")
    assert off.stdout.strip() == "False"
    assert osc.ok("workload", "global-job-scheduler", "show", "-f", "value").stdout.strip() == "False"
    on = osc.ok("workload", "global-job-scheduler", "enable", "-f", "value", user="root")
    assert on.stdout.strip() == "True"
    wait_for_idle(osc.service)


def test_a_running_snapshot_is_cancelled_from_the_command_line(osc: Osc) -> None:
    service = osc.service
    alice = osc.keystone.users["alice"]
    vm, disk = make_vm(service, alice.project_id, "web1")
    osc.ok("workload", "create", "--name", "web", "--instance", vm, "--wait")
    with service.disks.holding(disk, at=MIB) as gate:
        snapshot = osc.ok("workload", "snapshot", "create", "web", "-f", "json").json()
        assert snapshot["status"] == "creating"
        gate.wait_reached()
        locked = osc.ok("workload", "show", "web", "-c", "status", "-f", "value")
        assert locked.stdout.strip() == "locked"
        osc.ok("workload", "snapshot", "cancel", snapshot["id"])
    wait_for_idle(service)
    shown = osc.ok("workload", "snapshot", "show", snapshot["id"], "-f", "json", "-c", "status").json()
    assert shown == {"status": "cancelled"}
    assert osc.ok("workload", "show", "web", "-c", "status", "-f", "value").stdout.strip() == "available"


def test_a_local_token_and_an_explicit_endpoint_work_without_keystone(sqlite_service: Service) -> None:
    """Cairn's own tokens (`cairn token create`) through keystoneauth's admin_token plugin:
    no catalog, so the endpoint is given."""
    sqlite_service.reset_tables()
    token = sqlite_service.token(project="p1", user="u1")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "CAIRN_"))}
    env.update({"OS_AUTH_TYPE": "admin_token", "OS_TOKEN": token,
                "OS_ENDPOINT": f"{sqlite_service.url}/v1/p1"})
    done = subprocess.run([str(OPENSTACK), "workload", "type", "list", "-f", "value", "-c", "Name"],
                          capture_output=True, text=True, env=env, timeout=300, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.split()) == ["Parallel", "Serial"]
    env["OS_TOKEN"] = "not-a-token"
    refused = subprocess.run([str(OPENSTACK), "workload", "list"], capture_output=True, text=True, env=env,
                             timeout=300, stdin=subprocess.DEVNULL)
    assert refused.returncode == 1
    assert "The request you have made requires authentication. (HTTP 401)" in refused.stderr


def test_unlock_reset_long_lists_and_every_projects_workloads(osc: Osc) -> None:
    alice, root = osc.keystone.users["alice"], osc.keystone.users["root"]
    vm, disk = make_vm(osc.service, alice.project_id, "web1")
    osc.ok("workload", "create", "--name", "web", "--instance", vm, "--wait")
    with osc.service.disks.holding(disk, at=MIB) as gate:
        snapshot = osc.ok("workload", "snapshot", "create", "web", "-f", "value", "-c", "id").stdout.strip()
        gate.wait_reached()
        osc.ok("workload", "unlock", "web")
    wait_for_idle(osc.service)
    osc.ok("workload", "reset", "web", "--wait")
    wait_for_idle(osc.service)
    long = osc.ok("workload", "list", "--long", "-f", "json").json()
    assert [(w["Name"], w["Status"], w["Instances"]) for w in long] == [("web", "available", ["web1"])]
    snapshots = osc.ok("workload", "snapshot", "list", "--long", "-f", "json", "-c", "ID", "-c", "Status").json()
    assert snapshots == [{"ID": snapshot, "Status": "cancelled"}]

    vm_b, _ = make_vm(osc.service, root.project_id, "db1")
    osc.ok("workload", "create", "--name", "db", "--instance", vm_b, "--workload-type", "Parallel", "--wait",
           user="root")
    every = osc.ok("workload", "list", "--all-projects", "-f", "json", "-c", "Name", "-c", "Project",
                   "-c", "Workload Type", user="root").json()
    assert sorted(every, key=lambda w: w["Name"]) == [
        {"Name": "db", "Workload Type": "Parallel", "Project": root.project_id},
        {"Name": "web", "Workload Type": "Serial", "Project": alice.project_id}]
    # a member asking for every project sees their own
    assert osc.ok("workload", "list", "--all-projects", "-f", "value", "-c", "Name").stdout.split() == ["web"]
    wait_for_idle(osc.service)

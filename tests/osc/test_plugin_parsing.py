"""The plugin's own reading of options and files, without a server: restore files in
their three forms, Trilio's `--instance instance-id=ID`, `KEY=VALUE` pairs, fault bodies,
and the service type it looks up being the one Cairn registers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from osc_lib import exceptions

from cairn.auth import catalog
from cairn_osc import client, plugin
from cairn_osc.v1 import common, restores, workloads


def test_the_plugin_looks_up_the_service_type_cairn_registers() -> None:
    assert client.SERVICE_TYPE == catalog.SERVICE_TYPE == "workloads"
    assert plugin.API_NAME == "workloads" and plugin.DEFAULT_API_VERSION in plugin.API_VERSIONS


@pytest.mark.parametrize("content", [
    {"restore": {"name": "from-file", "options": {"openstack": {"instances": [{"id": "a", "include": True}]}}}},
    {"openstack": {"instances": [{"id": "a", "include": True}]}, "restore_type": "selective"},
    {"instances": [{"id": "a", "include": True}]},
])
def test_a_restore_file_may_hold_the_body_its_options_or_the_openstack_part(tmp_path: Path,
                                                                            content: dict[str, object]) -> None:
    path = tmp_path / "restore.json"
    path.write_text(json.dumps(content))
    body = restores.body_from_file(str(path))
    assert body["options"]["openstack"] == {"instances": [{"id": "a", "include": True}]}


@pytest.mark.parametrize(("content", "message"), [
    ("[1, 2]", "holds a JSON list, not an object"),
    ('{"vdisks": []}', "has none of 'restore', 'openstack' or 'instances'"),
    ('{"restore": 3}', "'restore' in"),
    ("{", "is not valid JSON"),
])
def test_a_restore_file_of_another_shape_is_refused_naming_the_option(tmp_path: Path, content: str,
                                                                      message: str) -> None:
    path = tmp_path / "restore.json"
    path.write_text(content)
    with pytest.raises(exceptions.CommandError, match=r"^--filename: ") as caught:
        restores.body_from_file(str(path))
    assert message in str(caught.value)


def test_a_missing_restore_file_is_named() -> None:
    with pytest.raises(exceptions.CommandError, match=r"--filename: cannot read /nonexistent/x.json"):
        restores.body_from_file("/nonexistent/x.json")


def test_instances_are_given_by_id_or_as_instance_id_pairs() -> None:
    assert workloads.instance_ids(["a", "instance-id=b"]) == [{"instance-id": "a"}, {"instance-id": "b"}]
    assert workloads.instance_ids(None) is None
    with pytest.raises(exceptions.CommandError, match="--instance: 'name=web'"):
        workloads.instance_ids(["name=web"])


def test_key_values_keep_text_and_read_json_objects() -> None:
    pairs = ["interval=12hr", "start_time=9:00 PM", 'daily={"retention": 7}', "note=a=b"]
    assert common.key_values(pairs, "--jobschedule") == {
        "interval": "12hr", "start_time": "9:00 PM", "daily": {"retention": 7}, "note": "a=b"}
    with pytest.raises(exceptions.CommandError, match="--jobschedule: 'interval' is not of the form KEY=VALUE"):
        common.key_values(["interval"], "--jobschedule")
    with pytest.raises(exceptions.CommandError, match="is not valid JSON"):
        common.key_values(["daily={retention"], "--jobschedule")


def test_fault_bodies_give_their_message() -> None:
    assert client.fault_message({"itemNotFound": {"code": 404, "message": "Workload x could not be found."}}) \
        == "Workload x could not be found."
    assert client.fault_message({"error": {"code": 401, "title": "Unauthorized", "message": "no"}}) == "no"
    assert client.fault_message({"detail": "Not Found"}) == "Not Found"
    assert client.fault_message("text") is None
    fault = client.Fault("Workload x could not be found.", 404, "req-1")
    assert str(fault) == "Workload x could not be found. (HTTP 404) (Request-ID: req-1)"

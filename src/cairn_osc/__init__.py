"""`openstack workload …`: Cairn's plugin for OpenStackClient.

A client of the workloadmgr v1 API and nothing else: it reaches Cairn over HTTP through
the Keystone session OpenStackClient builds (the service is found in the catalog by
type `workloads`), and it imports nothing of the service (`cairn`), nor does the service
import it. Installed with the `osc` extra (`pip install -e '.[osc]'`); OpenStackClient
finds it through the `openstack.cli.extension` entry point.

    plugin.py        the hooks OpenStackClient calls: API name, version option, make_client
    client.py        HTTP over the keystoneauth session; faults become errors with their message
    v1/common.py     what every command shares: finding by name or id, waiting, formatting
    v1/workloads.py  workload list, create, show, modify, delete, unlock, reset
    v1/snapshots.py  workload snapshot create, list, show, delete, cancel
    v1/restores.py   workload restore oneclick, selective, inplace, list, show, delete, cancel
    v1/policies.py   workload policy list, show, create, modify, delete, assign, assigned
    v1/scheduler.py  workload global-job-scheduler show, enable, disable
    v1/types.py      workload type list, show
"""
